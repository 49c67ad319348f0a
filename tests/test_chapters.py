"""Every chapter runs in the quick profile and reproduces its recorded numbers."""

import warnings

import pytest

from tests.harness import chapters, compare, expected_for, quick_budget


@pytest.mark.chapters
@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_chapter_reproduces_its_recorded_numbers(nb, run_chapter):
    _, values, seconds = run_chapter(nb, "quick")
    problems = compare(nb.stem, "quick", values, expected_for(nb.stem, "quick"))
    assert not problems, "\n".join(problems)
    if seconds > quick_budget(nb.stem):
        warnings.warn(
            f"{nb.stem}: quick profile took {seconds:.0f} s, over the {quick_budget(nb.stem):.0f} s budget",
            stacklevel=1,
        )


def test_compare_names_chapter_number_expected_and_actual():
    expected = {"pck": {"value": 0.9, "tol": 0.02}, "n": {"value": 17, "tol": None}}
    recorded = {"pck": {"value": 0.85, "tol": 0.02}, "n": {"value": 17, "tol": None}}
    (msg,) = compare("03_heatmap", "quick", recorded, expected)
    assert "03_heatmap" in msg and "pck" in msg and "0.9" in msg and "0.85" in msg


def test_compare_flags_missing_and_unexpected_numbers():
    expected = {"a": {"value": 1.0, "tol": None}}
    problems = compare("ch", "quick", {"b": {"value": 2.0, "tol": None}}, expected)
    assert any("not record" in p for p in problems)
    assert any("no expected value" in p for p in problems)
    assert compare("ch", "quick", {"a": {"value": 1.0 + 1e-9, "tol": None}}, expected) == []


def test_every_chapter_has_expected_quick_values():
    missing = [nb.stem for nb in chapters() if not expected_for(nb.stem, "quick")]
    assert not missing, f"no stored quick-profile values for {missing}; run `make expected PROFILE=quick`"


def _chapter_values(run_chapter, stem: str) -> dict:
    from tests.harness import CHAPTERS_DIR

    _, values, _ = run_chapter(CHAPTERS_DIR / f"{stem}.ipynb", "quick")
    return {k: v["value"] for k, v in values.items()}


@pytest.mark.chapters
def test_heatmap_beats_regression_quick_profile(run_chapter):
    """Chapter 3's claim: same backbone, data and steps, and the heatmap model is clearly more accurate."""
    v = _chapter_values(run_chapter, "03_heatmap")
    assert v["sp_heatmap_pck01_mean"] > v["sp_deeppose_pck01_mean"] + 0.1, v
    assert v["codec_pck01"] == 1.0  # the 16×16 heatmap grid itself loses nothing at PCK@0.1


@pytest.mark.chapters
@pytest.mark.xfail(strict=True, reason="issue 5's quick target is not met: 200 CPU steps on the hard synthetic crops")
def test_heatmap_reaches_090_quick_profile(run_chapter):
    """The issue's target for the quick profile (<= 90 s on 2 cores). Known to fail: see chapter 3's diagnosis."""
    assert _chapter_values(run_chapter, "03_heatmap")["hm_pck01"] >= 0.90


def test_refreshing_expected_values_keeps_the_stored_tolerances(tmp_path, monkeypatch):
    import json

    from tests import refresh_expected

    monkeypatch.setattr(refresh_expected, "EXPECTED_DIR", tmp_path)
    (tmp_path / "ch.json").write_text(json.dumps({"quick": {"pck": {"value": 0.5, "tol": 0.03}}}))
    loose = refresh_expected.store("ch", "standard", {"pck": {"value": 0.7}, "ap": {"value": 0.2}, "n": {"value": 3}})
    data = json.loads((tmp_path / "ch.json").read_text())
    assert data["standard"]["pck"] == {"value": 0.7, "tol": 0.03}  # the quick profile's tolerance carries over
    assert data["standard"]["ap"] == {"value": 0.2, "tol": None} and loose == ["ap"]  # a float left exact is listed
    assert data["quick"]["pck"] == {"value": 0.5, "tol": 0.03}
    refresh_expected.store("ch", "quick", {"pck": {"value": 0.6}})
    assert json.loads((tmp_path / "ch.json").read_text())["quick"]["pck"] == {"value": 0.6, "tol": 0.03}


def test_reproduce_table_flags_numbers_outside_their_tolerance(tmp_path, monkeypatch):
    import json

    from tests import reproduce

    stem = chapters()[0].stem
    monkeypatch.setattr(reproduce, "chapters", lambda: chapters()[:1])
    monkeypatch.setattr(
        reproduce, "expected_for", lambda ch, prof: {"a": {"value": 1.0, "tol": 0.1}, "b": {"value": 2.0, "tol": 0.1}}
    )
    (tmp_path / f"{stem}.standard.json").write_text(json.dumps({"values": {"a": {"value": 1.05}, "b": {"value": 3}}}))
    rows = reproduce.rows("standard", tmp_path)
    assert [r[5] for r in rows] == ["ok", "OFF"]
    assert reproduce.main(["--results", str(tmp_path)]) == 1
