"""Every directional claim in fixed words is pinned: its recorded number is farther from the bound than its
tolerance, so a chapter that reproduces within tolerance cannot reverse the claim (tests/expected/claims.json)."""

import json

import pytest

from tests.harness import EXPECTED_DIR, PROFILES, chapters, expected_for

CLAIMS = json.loads((EXPECTED_DIR / "claims.json").read_text())
CASES = [(ch, name, bound) for ch, claims in CLAIMS.items() if not ch.startswith("_") for name, bound in claims.items()]


@pytest.mark.parametrize("chapter, name, bound", CASES, ids=[f"{c}:{n}" for c, n, _ in CASES])
def test_claim_is_farther_from_its_bound_than_its_tolerance(chapter, name, bound):
    op, limit = bound.split()
    assert op == ">", f"claims.json: {chapter}:{name}: only '> x' bounds are supported, found {bound!r}"
    seen = 0
    for profile in PROFILES:
        exp = expected_for(chapter, profile).get(name)
        if exp is None:
            continue
        seen += 1
        tol = exp["tol"] or 0.0
        margin = exp["value"] - float(limit)
        assert margin > tol, (
            f"{chapter} [{profile}]: {name} = {exp['value']:.4g} backs the claim '{bound}', but its tolerance "
            f"{tol} is not smaller than its distance {margin:.4g} from {limit}: the claim is not pinned"
        )
    assert seen, f"claims.json names {chapter}:{name}, which no profile of tests/expected/{chapter}.json records"


def test_claims_name_existing_chapters():
    stems = {nb.stem for nb in chapters()}
    assert set(CLAIMS) - {"_about"} <= stems
