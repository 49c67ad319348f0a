"""posekit.book: profiles, recorded results, caches."""

import json

import pytest

import posekit
from posekit import book


def test_pick_returns_the_profile_setting_and_demands_all_three():
    assert posekit.pick("quick", quick=1, standard=2, full=3) == 1
    with pytest.raises(ValueError, match="missing"):
        posekit.pick("quick", quick=1, standard=2)
    with pytest.raises(ValueError, match="PROFILE"):
        posekit.pick("fast", quick=1, standard=2, full=3)


def test_record_writes_the_chapter_results_file(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_RESULTS", str(tmp_path))
    ctx = posekit.setup("99_test", "quick", 3)
    assert ctx.pick(quick="q", standard="s", full="f") == "q"
    import numpy as np

    assert posekit.record("acc", np.float32(0.5)) == np.float32(0.5)
    posekit.record("n", np.int64(7))
    data = json.loads((tmp_path / "99_test.quick.json").read_text())
    assert data["seed"] == 3
    assert data["values"] == {"acc": {"value": 0.5}, "n": {"value": 7}}


def test_record_rejects_arrays_and_needs_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_RESULTS", str(tmp_path))
    monkeypatch.setattr(book, "_CTX", None)
    with pytest.raises(RuntimeError, match="setup"):
        posekit.record("x", 1.0)
    posekit.setup("99_test", "quick", 0)
    import numpy as np

    with pytest.raises(TypeError, match="number"):
        posekit.record("x", np.zeros(3))


def test_setup_rejects_bad_profile_and_seed():
    with pytest.raises(ValueError, match="PROFILE"):
        posekit.setup("99_test", "medium", 0)
    with pytest.raises(TypeError, match="SEED"):
        posekit.setup("99_test", "quick", "0")
