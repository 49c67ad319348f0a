"""Chapter plumbing: profiles, seeds, caches and recorded results.

Every chapter starts with::

    ctx = posekit.setup("03_heatmap", PROFILE, SEED)

and reports its key numbers with ``posekit.record(name, value)``: the value is
written to ``<results dir>/<chapter>.<profile>.json`` (read by the regression
tests) and glued with myst-nb so the prose shows the same number.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posekit.io import atomic_write_json

PROFILES = ("quick", "standard", "full")


@dataclass
class Context:
    chapter: str
    profile: str
    seed: int
    results_path: Path

    def pick(self, **by_profile):
        """The value for this chapter's profile: ``ctx.pick(quick=300, standard=3000, full=30000)``."""
        return pick(self.profile, **by_profile)


_CTX: Context | None = None


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"PROFILE must be one of {PROFILES}, got {profile!r}")
    return profile


def pick(profile: str, **by_profile):
    """Select a setting by profile name; every profile must be given."""
    check_profile(profile)
    missing = [p for p in PROFILES if p not in by_profile]
    unknown = [k for k in by_profile if k not in PROFILES]
    if missing or unknown:
        raise ValueError(f"pick() needs exactly {PROFILES}; missing {missing}, unknown {unknown}")
    return by_profile[profile]


def repo_root() -> Path | None:
    """The source checkout this posekit was imported from, if any."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").exists() else None


def cache_dir(*parts: str) -> Path:
    """A cache folder: $POSEKIT_CACHE, else <repo>/.cache, else ~/.cache/posekit."""
    base = os.environ.get("POSEKIT_CACHE")
    if base:
        root = Path(base)
    elif repo_root() is not None:
        root = repo_root() / ".cache"
    else:
        root = Path.home() / ".cache" / "posekit"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """Where chapters write their recorded numbers: $POSEKIT_RESULTS, else <cache>/results."""
    env = os.environ.get("POSEKIT_RESULTS")
    path = Path(env) if env else cache_dir("results")
    path.mkdir(parents=True, exist_ok=True)
    return path


def enable_compilation_cache() -> None:
    """Turn on JAX's persistent compilation cache (a second run skips most compiles)."""
    try:
        import jax
    except ImportError:  # chapters without models do not need jax
        return
    jax.config.update("jax_compilation_cache_dir", str(cache_dir("jax")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def setup(chapter: str, profile: str, seed: int) -> Context:
    """Start a chapter: check the profile, seed numpy/random, enable caches, set plot style; print the devices
    the chapter runs on (a GPU when JAX finds one)."""
    global _CTX
    check_profile(profile)
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"SEED must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    enable_compilation_cache()
    from posekit import viz

    viz.set_style()
    path = results_dir() / f"{chapter}.{profile}.json"
    _CTX = Context(chapter, profile, int(seed), path)
    from posekit import parallel

    print(f"{chapter}, profile {profile!r}, seed {seed}; " + parallel.describe())
    atomic_write_json(path, {"chapter": chapter, "profile": profile, "seed": int(seed), "values": {}})
    return _CTX


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "item") and getattr(value, "size", None) == 1:  # 0-d numpy/jax arrays
        return _plain(value.item())
    raise TypeError(f"record() takes a number or string, got {type(value).__name__}")


def record(name: str, value, *, display: bool = False, ko: str | None = None):
    """Record a chapter's key number and glue it for the prose.

    Args:
      name: identifier, also the myst-nb glue key (``{glue:text}`name:.3f```).
      value: a number (or a short string).
      ko: when `value` is English words, the same words in Korean, for the Korean edition (see `glue`).
    Returns the value, so ``acc = record("acc", compute())`` reads naturally. How closely a rerun must
    reproduce the number is the tests' business: its tolerance lives in ``tests/expected/<chapter>.json``.
    """
    if _CTX is None:
        raise RuntimeError("call posekit.setup(chapter, PROFILE, SEED) before posekit.record()")
    plain = _plain(value)
    data = json.loads(_CTX.results_path.read_text())
    data["values"][name] = {"value": plain}
    atomic_write_json(_CTX.results_path, data)
    glue(name, plain, display=display, ko=ko)
    return value


def translation_key(name: str, language: str) -> str:
    """The glue key of a glued text's translation: the Korean edition pastes `name__ko` where the prose says
    `name` (`book/_ext/editions.py`)."""
    return f"{name}__{language}"


def glue(name: str, value, display: bool = False, *, ko: str | None = None) -> None:
    """myst-nb glue when running inside a notebook build; a no-op elsewhere.

    Numpy/JAX scalars are converted to Python numbers first, so ``{glue:text}`name:.3f``` can format them.
    Words the code chooses for the prose (``"rises" if gain > 0 else "falls"``) need a translation for each
    edition of the book: pass it as `ko=` ("오른다" if gain > 0 else "내린다"); it is glued as ``name__ko``, which
    the Korean edition pastes instead (`book/_ext/editions.py`), and its build warns about glued English words
    without one.
    """
    value = _plain(value) if not isinstance(value, str) else value
    if ko is not None and not isinstance(ko, str):
        raise TypeError(f"glue({name!r}, ko=...): expected the Korean text as a str, got {type(ko).__name__}")
    try:
        from IPython import get_ipython
        from myst_nb import glue as _glue
    except ImportError:
        return
    if get_ipython() is not None:
        _glue(name, value, display=display)
        if ko is not None:
            _glue(translation_key(name, "ko"), ko, display=False)


def show_table(header, rows) -> None:
    """Display a Markdown table (header: column names; rows: sequences of cells, shown with `str`) in a
    notebook, rendered as a table in the book (printed as Markdown outside IPython). Used in chapter 5."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Markdown(text))
    else:
        print(text)
