"""The model zoo: every stored model loads, matches its hash and config, and re-evaluates to its manifest's
numbers exactly; a tiny recipe goes through train → export → load → verify; damaged zoos fail with one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx

from posekit import zoo

REPO_ZOO = zoo.zoo_dir()
STORED = list(zoo.read_manifest(REPO_ZOO)["models"])


def test_the_repository_zoo_holds_every_recipe_within_its_size_budget():
    manifest = zoo.read_manifest(REPO_ZOO)
    assert set(manifest["models"]) == set(zoo.ENTRIES), "zoo/manifest.json and zoo.ENTRIES name the same models"
    sizes = {name: (REPO_ZOO / e["file"]).stat().st_size for name, e in manifest["models"].items()}
    assert max(sizes.values()) <= 10e6 and sum(sizes.values()) <= 60e6
    for name, e in manifest["models"].items():
        assert e["bytes"] == sizes[name]
        entry = zoo.ENTRIES[name]
        assert e["steps"] == entry.settings["steps"] and e["images_seen"] == e["steps"] * e["config"]["batch_size"]
        curve = e["curve"]
        assert curve["step"][-1] == e["steps"] and len(curve) >= 2
        assert all(len(v) == len(curve["step"]) for v in curve.values())
        assert e["commit"] and e["machine"] and e["train_seconds"] > 0 and e["face_labels"] in ("seen", "all")
        if entry.kind == "crops":  # the curve's last point is the model's AP without the flip test
            assert curve["ap_noflip"][-1] == e["metrics"]["ap_noflip"]
        if entry.kind == "detector":
            assert curve["box_ap"][-1] == e["metrics"]["box_ap"]
        if entry.kind == "bottom-up":  # the curve's last point is the model's AP (the same pipeline)
            assert curve["ap"][-1] == e["metrics"]["ap"]


@pytest.fixture(scope="module")
def vals():
    return {"sp": zoo.sp_validation(), "td": zoo.td_validation()}


@pytest.mark.parametrize("name", STORED)
def test_zoo_model_verifies_exactly(name, vals):
    """sha256, config = its recipe's today, and the re-evaluation equal to the manifest (tolerance 0)."""
    got = zoo.verify(name, REPO_ZOO, val=vals["sp" if zoo.ENTRIES[name].kind == "single-person" else "td"])
    assert got == zoo.info(name, REPO_ZOO)["metrics"]


def _tiny_entry(monkeypatch):
    entry = zoo.Entry("sp-tiny", "pooling", "02_regression", "pck01",
                      dict(steps=4, train_size=64, seed=0, size=64, lr=1e-3))  # fmt: skip
    monkeypatch.setitem(zoo.ENTRIES, entry.name, entry)
    monkeypatch.setattr(zoo, "SP_VAL", (16, 1000))  # a small validation set for the tiny model
    return entry


def test_export_load_verify_roundtrip(tmp_path, monkeypatch):
    _tiny_entry(monkeypatch)
    record = zoo.export("sp-tiny", tmp_path, commit="abc123")
    assert (tmp_path / "sp-tiny.msgpack").stat().st_size == record["bytes"]
    assert record["config"]["model"] == "regressionpose" and record["config"]["lr"] == 1e-3
    assert record["curve"]["step"][-1] == 4 and record["commit"] == "abc123"
    assert json.loads((tmp_path / zoo.MANIFEST).read_text())["models"]["sp-tiny"]["sha256"] == record["sha256"]
    model = zoo.load("sp-tiny", tmp_path)
    assert zoo.evaluate("sp-tiny", model) == record["metrics"]
    assert zoo.verify("sp-tiny", tmp_path) == record["metrics"]


def test_a_damaged_zoo_fails_with_one_clear_line(tmp_path, monkeypatch):
    _tiny_entry(monkeypatch)
    zoo.export("sp-tiny", tmp_path, commit="abc123")
    path, manifest_path = tmp_path / "sp-tiny.msgpack", tmp_path / zoo.MANIFEST
    good, manifest = path.read_bytes(), json.loads(manifest_path.read_text())

    with pytest.raises(zoo.ZooError, match="is not in"):
        zoo.load("sp-nothing", tmp_path)
    path.write_bytes(good[:-7] + b"\0" * 7)  # corrupt
    with pytest.raises(zoo.ZooError, match="damaged or replaced: sha256"):
        zoo.load("sp-tiny", tmp_path)
    path.unlink()  # missing
    with pytest.raises(zoo.ZooError, match=r"sp-tiny.msgpack is missing \(retrain it: posekit zoo train sp-tiny\)"):
        zoo.load("sp-tiny", tmp_path)
    path.write_bytes(good)
    wrong = json.loads(json.dumps(manifest))
    wrong["models"]["sp-tiny"]["config"]["head"] = "flatten"  # a model the weights do not fit
    manifest_path.write_text(json.dumps(wrong))
    with pytest.raises(zoo.ZooError, match="does not fit the model of its config"):
        zoo.load("sp-tiny", tmp_path)
    wrong = json.loads(json.dumps(manifest))
    wrong["models"]["sp-tiny"]["config"]["batch_size"] = 64  # loads, but is not what the recipe trains
    manifest_path.write_text(json.dumps(wrong))
    with pytest.raises(zoo.ZooError, match="config differs from its recipe's in batch_size"):
        zoo.verify("sp-tiny", tmp_path)
    wrong = json.loads(json.dumps(manifest))
    wrong["models"]["sp-tiny"]["metrics"]["pck01"] += 0.01
    manifest_path.write_text(json.dumps(wrong))
    with pytest.raises(zoo.ZooError, match="re-evaluated pck01 = .*, the manifest says"):
        zoo.verify("sp-tiny", tmp_path)
    manifest_path.write_text("{not json")
    with pytest.raises(zoo.ZooError, match="not a readable manifest"):
        zoo.read_manifest(tmp_path)


def test_posekit_zoo_cli_list_and_verify_errors(tmp_path):
    """`posekit zoo list` prints the table; `verify` on a damaged copy exits 2 with one line naming the model."""
    if not STORED:
        pytest.skip("the zoo is empty")
    name = STORED[0]
    copy = tmp_path / "zoo"
    copy.mkdir()
    shutil.copy(REPO_ZOO / zoo.MANIFEST, copy / zoo.MANIFEST)
    shutil.copy(REPO_ZOO / zoo.info(name)["file"], copy / zoo.info(name)["file"])
    cli = [sys.executable, "-m", "posekit.cli", "zoo"]
    out = subprocess.run([*cli, "list"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0].split() == ["name", "chapter", "metric", "steps", "size"]
    assert all(n in out for n in STORED)
    data = bytearray((copy / zoo.info(name)["file"]).read_bytes())
    data[100] ^= 0xFF
    (copy / zoo.info(name)["file"]).write_bytes(bytes(data))
    res = subprocess.run([*cli, "verify", name, "--zoo", str(copy)], capture_output=True, text=True)
    assert res.returncode == 2
    assert f"FAILED {name}: " in res.stdout and "damaged or replaced" in res.stdout
    assert res.stderr.strip().splitlines()[-1] == f"posekit zoo: error: 1 of 1 models failed verification: {name}"
    env_res = subprocess.run([*cli, "verify", "sp-heatmap"], capture_output=True, text=True,
                             env={**__import__("os").environ, "POSEKIT_ZOO": str(tmp_path / "empty")})  # fmt: skip
    assert env_res.returncode == 2 and "is not in" in env_res.stdout and "empty" in env_res.stdout


def test_weights_hold_parameters_and_batchnorm_statistics_as_float32():
    from flax import nnx

    from posekit.checkpoint import WEIGHTS, load_weights_bytes, weights_bytes
    from posekit.models import SimpleBaseline

    a, b = SimpleBaseline("tiny", rngs=nnx.Rngs(0)), SimpleBaseline("tiny", rngs=nnx.Rngs(1))
    load_weights_bytes(b, weights_bytes(a))
    sa, sb = nnx.state(a, WEIGHTS), nnx.state(b, WEIGHTS)
    for x, y in zip(jax_leaves(sa), jax_leaves(sb)):
        assert y.dtype == np.float32 and np.array_equal(x, y)
    with pytest.raises(ValueError, match="not a weights file"):
        load_weights_bytes(b, b"\x93junk")


def jax_leaves(state):
    import jax

    return [np.asarray(v) for v in jax.tree_util.tree_leaves(state)]


def test_a_run_can_start_from_a_zoo_model():
    """`init`: the crop model of chapter 4 starts from the single-person zoo model of the same network."""
    import jax

    from posekit.experiments.recipe import _start, init_from
    from posekit.experiments.top_down import crop_config
    from posekit.models import build_model

    cfg = crop_config("simplebaseline", steps=10, train_scenes=8, init="sp-heatmap")
    assert cfg["init"] == "sp-heatmap" and cfg["init_sha256"] == zoo.info("sp-heatmap")["sha256"][:16]
    assert init_from(None) == {} and "init" not in crop_config("simplebaseline", steps=10, train_scenes=8)
    model = _start(build_model(cfg, 0), cfg)
    same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), nnx.state(model), nnx.state(zoo.load("sp-heatmap")))
    assert all(jax.tree.leaves(same))
    with pytest.raises(ValueError, match="now has"):
        _start(build_model(cfg, 0), {**cfg, "init_sha256": "0" * 16})
    with pytest.raises(ValueError, match="does not have this run's model's structure"):
        _start(build_model(cfg, 0), {**cfg, **init_from("sp-deeppose")})


def test_a_detector_starts_from_a_pose_models_backbone_or_a_whole_detector():
    """`detector_config(init=...)`: a pose model gives its backbone (`init_part`), a detector all its weights (the
    256-pixel detector trains on from the 128-pixel one: the network is fully convolutional)."""
    import jax

    from posekit.experiments.recipe import _start
    from posekit.experiments.top_down import detector_config
    from posekit.models import build_model

    assert detector_config(steps=10, train_scenes=8, init="sp-heatmap")["init_part"] == "backbone"
    cfg = detector_config(steps=10, train_scenes=8, input_size=256, init="td-detector")
    assert "init_part" not in cfg and cfg["init_sha256"] == zoo.info("td-detector")["sha256"][:16]
    model = _start(build_model(cfg, 0), cfg)
    same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), nnx.state(model), nnx.state(zoo.load("td-detector")))
    assert all(jax.tree.leaves(same))


def test_the_zoo_hrnet_trains_at_simplebaselines_flops():
    """td-hrnet's steps × its FLOPs per crop = td-simplebaseline's (`TD_HRNET_FLOP_SHARE`, recomputed here)."""
    from posekit.models import HRNet, SimpleBaseline, flops

    shape = (1, *zoo.TD_CROP, 3)
    sb = nnx.eval_shape(lambda: SimpleBaseline("tiny", rngs=nnx.Rngs(0)))
    hr = nnx.eval_shape(lambda: HRNet("lite", rngs=nnx.Rngs(0)))
    assert flops(sb, shape) / flops(hr, shape) == pytest.approx(zoo.TD_HRNET_FLOP_SHARE, rel=1e-9)
    steps = {n: zoo.ENTRIES[n].settings["steps"] for n in ("td-simplebaseline", "td-hrnet")}
    assert steps["td-hrnet"] == round(steps["td-simplebaseline"] * zoo.TD_HRNET_FLOP_SHARE)


def test_a_bottom_up_model_starts_from_a_top_down_hrnets_body():
    """`bottom_up_config(init="td-hrnet")`: every HRNet layer but the last 1×1 conv (whose outputs differ: 17 maps
    against 17 maps and 17 tags) comes from the top-down model, so the two compute the same features; the heads
    stay as initialized. (The part was once a hand-kept list that left out stage1: this compares features.)"""
    import jax

    from posekit.experiments.bottom_up import bottom_up_config
    from posekit.experiments.recipe import HEAD, _start, hrnet_body
    from posekit.models import build_model

    cfg = bottom_up_config(steps=10, train_scenes=8, init="td-hrnet")
    assert cfg["init_part"] == "body" and cfg["init_sha256"] == zoo.info("td-hrnet")["sha256"][:16]
    fresh, model, start = build_model(cfg, 0), _start(build_model(cfg, 0), cfg), zoo.load("td-hrnet")

    def equal(a, b):
        return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), nnx.state(a), nnx.state(b))))

    assert set(hrnet_body(model)) | {HEAD} == {k for k, _ in nnx.state(start).items()}  # every layer but the head
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    mine = model.hrnet(x, return_features=True)[1]
    theirs = start(x, return_features=True)[1]
    assert mine.keys() == theirs.keys()
    assert all(np.array_equal(mine[k], theirs[k]) for k in mine if k != "heatmaps")  # the head's outputs differ
    assert equal(model.hrnet.final, fresh.hrnet.final) and equal(model.final_half, fresh.final_half)
    assert not equal(model.hrnet.stage1, fresh.hrnet.stage1)


def test_the_bottom_up_zoo_trains_at_top_downs_total_compute():
    """`BU_STEPS`: HigherHRNet's training FLOPs plus its pretraining chain (td-hrnet ← sp-hrnet) = the top-down
    pipeline's (td-detector ← sp-heatmap, td-hrnet ← sp-hrnet), to the step (`training_flops`)."""
    from posekit.models import flops
    from posekit.models.bottom_up import AssociativeEmbedding

    top_down = sum(zoo.training_flops("td-detector").values()) + sum(zoo.training_flops("td-hrnet").values())
    chain = sum(zoo.training_flops("td-hrnet").values())
    settings = zoo.ENTRIES["bu-higherhrnet"].settings
    size = settings["input_size"]
    per_step = 3 * flops(AssociativeEmbedding("lite", higher=True, rngs=nnx.Rngs(0)), (1, size, size, 3))
    assert zoo.BU_STEPS == settings["steps"] == round((top_down - chain) / (per_step * settings["batch_size"]))
    assert zoo.ENTRIES["bu-ae"].settings["steps"] == zoo.BU_STEPS


def test_the_longer_bottom_up_models_continue_to_their_total_budget():
    """bu-higherhrnet-16x (and -64x): bu-higherhrnet's recipe, started from all of its weights, trained until the
    two runs together have spent 16× (64×) the standard profile's steps."""
    base = zoo.ENTRIES["bu-higherhrnet"].settings
    assert set(zoo.BU_LONGER) <= set(zoo.BU_LONGER_PLANNED)
    for k in zoo.BU_LONGER:
        entry = zoo.ENTRIES[f"bu-higherhrnet-{k}x"]
        assert entry.settings == dict(base, init="bu-higherhrnet", steps=entry.settings["steps"])
        assert base["steps"] + entry.settings["steps"] == k * zoo.BU_STANDARD_STEPS
        assert "init_part" not in zoo.recipe_config(f"bu-higherhrnet-{k}x", 1e-2)  # all of its weights


def test_the_256_pixel_bottom_up_model_spends_the_16x_continuations_compute():
    """bu-higherhrnet-256: bu-higherhrnet's recipe at 256 pixels, from all of its weights, for as many training
    FLOPs as bu-higherhrnet-16x at 128 (`BU_256_FLOP_SHARE`, recomputed here), at that continuation's rate."""
    from posekit.models import flops
    from posekit.models.bottom_up import AssociativeEmbedding

    model = AssociativeEmbedding("lite", higher=True, rngs=nnx.Rngs(0))
    ratio = flops(model, (1, 128, 128, 3)) / flops(model, (1, 256, 256, 3))
    assert ratio == pytest.approx(zoo.BU_256_FLOP_SHARE, rel=1e-9)
    entry, control = zoo.ENTRIES["bu-higherhrnet-256"], zoo.ENTRIES["bu-higherhrnet-16x"]
    assert entry.settings == dict(control.settings, input_size=256, steps=entry.settings["steps"], lr=zoo.BU_256_LR)
    assert entry.settings["steps"] == round(control.settings["steps"] * zoo.BU_256_FLOP_SHARE)
    assert entry.lr_sweep is None and zoo.info("bu-higherhrnet-16x")["lr"] == zoo.BU_256_LR
    assert "init_part" not in zoo.recipe_config("bu-higherhrnet-256", zoo.BU_256_LR)  # all of its weights
