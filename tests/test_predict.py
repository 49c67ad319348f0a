"""`posekit predict`: a trained run (rebuilt from its folder) on a folder of images, then `posekit eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posekit import metrics, scenes
from posekit.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A scene folder written by `posekit synth` and three tiny runs (bottom-up, detector, crop model)."""
    root = tmp_path_factory.mktemp("predict")
    mp = pytest.MonkeyPatch()
    mp.setenv("POSEKIT_CACHE", str(root / "cache"))
    from posekit.experiments.bottom_up import train_bottom_up
    from posekit.experiments.top_down import train_crop_model, train_detector

    # the first 4 of the shared validation scenes, written to disk as the CLI writes any dataset
    assert main(["synth", "--out", str(root / "val"), "--kind", "scene", "--num-images", "4", "--seed",
                 str(scenes.VAL_SEED), "--crowd-prob", str(scenes.CROWD_PROB), "--quiet"]) == 0  # fmt: skip
    small = dict(steps=2, train_scenes=8, progress=False)
    train_bottom_up(input_size=64, batch_size=2, **small)
    train_detector(input_size=64, batch_size=2, **small)
    train_crop_model("simplebaseline", input_size=(32, 24), batch_size=2, **small)
    runs = {p.name.split("-")[0]: p.name for p in (root / "cache" / "runs").iterdir()}
    yield root, runs
    mp.undo()


def _args(root, *extra):
    return ["predict", "--images", str(root / "val" / "images"), "--quiet", *extra]


def test_bottom_up_run_predicts_a_folder_and_eval_reads_it(setup, capsys):
    from posekit import predict
    from posekit.bottom_up import bottom_up

    root, runs = setup
    out = root / "bu.json"
    assert main(_args(root, "--coco", str(root / "val" / "annotations.json"), "--run", runs["bottomup"], "--out",
                      str(out), "--draw", str(root / "drawn"))) == 0  # fmt: skip
    results = json.loads(out.read_text())
    assert all(len(r["keypoints"]) == 51 for r in results)
    assert sorted(p.name for p in (root / "drawn").iterdir()) == [f"{i:06d}.png" for i in range(4)]
    # the same numbers as the chapter's pipeline run directly on the same scenes
    folder = scenes.load_folder(root / "val" / "annotations.json", root / "val" / "images")
    _, _, model = predict._model_of(root / "cache" / "runs" / runs["bottomup"])
    direct = bottom_up(folder["images"], model, input_size=64, image_ids=folder["image_ids"])
    assert metrics.coco_eval(folder["coco"], results) == metrics.coco_eval(folder["coco"], direct)
    # grouping's thresholds (chapter 5 chooses them per model) reach the pipeline
    assert main(_args(root, "--coco", str(root / "val" / "annotations.json"), "--run", runs["bottomup"],
                      "--detection-threshold", "0.02", "--tag-threshold", "0.5", "--out", str(out))) == 0  # fmt: skip
    low = bottom_up(folder["images"], model, input_size=64, image_ids=folder["image_ids"], detection_threshold=0.02,
                    tag_threshold=0.5)  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(low)) != json.loads(json.dumps(direct))
    capsys.readouterr()
    assert main(["eval", str(root / "val" / "annotations.json"), str(out)]) == 0
    assert "Average Precision" in capsys.readouterr().out


def test_written_scenes_are_the_validation_scenes(setup):
    root, _ = setup
    folder = scenes.load_folder(root / "val" / "annotations.json", root / "val" / "images")
    val = scenes.select(scenes.validation_scenes("quick"), range(4))
    assert all(np.array_equal(a, b) for a, b in zip(folder["images"], val["images"]))
    assert scenes.fingerprint(folder) == scenes.fingerprint(val)


def test_top_down_run_needs_and_uses_a_detector(setup, capsys):
    from posekit import predict
    from posekit.top_down import top_down

    root, runs = setup
    out = root / "td.json"
    assert main(_args(root, "--coco", str(root / "val" / "annotations.json"), "--run", runs["topdown"],
                      "--detector-run", runs["detector"], "--out", str(out))) == 0  # fmt: skip
    results = json.loads(out.read_text())
    assert {r["image_id"] for r in results} <= {1, 2, 3, 4}
    # the same AP as the chapter's pipeline run in memory on the validation scenes
    val = scenes.select(scenes.validation_scenes("quick"), range(4))
    _, _, pose = predict._model_of(root / "cache" / "runs" / runs["topdown"])
    _, _, det = predict._model_of(root / "cache" / "runs" / runs["detector"])
    direct = top_down(val["images"], pose, detector=det, det_input=64, image_ids=val["image_ids"],
                      input_size=(32, 24), flip_test=True)  # fmt: skip
    assert metrics.coco_eval(val["coco"], results) == metrics.coco_eval(val["coco"], direct)
    assert main(_args(root, "--run", runs["topdown"], "--out", str(out))) == 2
    assert "needs a person detector run" in capsys.readouterr().err


def test_zoo_models_predict_as_their_runs_do(setup, tmp_path):
    """`--zoo NAME`: a model of a zoo folder (config in the manifest, weights in its file) gives the results of the
    run it came from; a top-down zoo model takes the zoo's detector."""
    import hashlib

    from posekit import predict
    from posekit.checkpoint import read_run, weights_bytes
    from posekit.zoo_files import MANIFEST

    root, runs = setup
    models = {}
    for name, run in [("td-detector", runs["detector"]), ("td-crops", runs["topdown"])]:
        _, cfg, model = predict._model_of(root / "cache" / "runs" / run)
        data = weights_bytes(model)
        (tmp_path / f"{name}.msgpack").write_bytes(data)
        models[name] = {"file": f"{name}.msgpack", "sha256": hashlib.sha256(data).hexdigest(), "config": cfg}
        assert cfg == read_run(root / "cache" / "runs" / run)["config"]
    (tmp_path / MANIFEST).write_text(json.dumps({"format": 1, "models": models}))
    via_runs, via_zoo = root / "td-runs.json", root / "td-zoo.json"
    assert main(_args(root, "--run", runs["topdown"], "--detector-run", runs["detector"], "--out", str(via_runs))) == 0
    assert main(_args(root, "--zoo", "td-crops", "--zoo-dir", str(tmp_path), "--out", str(via_zoo))) == 0
    assert json.loads(via_zoo.read_text()) == json.loads(via_runs.read_text())
    # two zoo detectors, each at its own input, merged by Soft-NMS, with the detector's flip test (chapter 4)
    models["td-detector-b"] = dict(models["td-detector"], file="td-detector.msgpack")
    (tmp_path / MANIFEST).write_text(json.dumps({"format": 1, "models": models}))
    via_pair = root / "td-pair.json"
    assert main(_args(root, "--zoo", "td-crops", "--zoo-dir", str(tmp_path), "--detector-zoo",
                      "td-detector,td-detector-b", "--detector-flip", "--decoder", "dark", "--out",
                      str(via_pair))) == 0  # fmt: skip
    from posekit.top_down import top_down
    from posekit.zoo_files import load

    folder = scenes.load_folder(root / "val" / "annotations.json", root / "val" / "images")
    det, crops = load("td-detector", tmp_path), load("td-crops", tmp_path)
    size = models["td-detector"]["config"]["input_size"]
    expected = top_down(folder["images"], crops, detector=[(det, size), (det, size)], det_flip_test=True,
                        image_ids=folder["image_ids"], input_size=tuple(models["td-crops"]["config"]["input_size"]),
                        sigma=models["td-crops"]["config"]["sigma"], flip_test=True, decoder="dark")  # fmt: skip
    got = json.loads(via_pair.read_text())
    assert len(got) == len(expected) > 0
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected])
    np.testing.assert_allclose([r["keypoints"] for r in got], [r["keypoints"] for r in expected], rtol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        predict.load_pipeline(root / "cache" / "runs" / runs["topdown"], zoo="td-crops", zoo_dir=tmp_path)
    with pytest.raises(ValueError, match="a person detector's run"):
        predict.load_pipeline(zoo="td-detector", zoo_dir=tmp_path)


def test_predict_errors_name_what_is_wrong(setup, tmp_path, capsys):
    root, runs = setup
    out = str(tmp_path / "r.json")
    cases = [
        (_args(root, "--run", "bottomup-nonexistent", "--out", out), "no such run"),
        (_args(root, "--run", runs["detector"], "--out", out), "person detector's run"),
        (_args(root, "--checkpoint", str(tmp_path / "missing.msgpack"), "--out", out), "no such file"),
        (_args(root, "--out", out), "--run NAME"),
        (_args(root, "--run", runs["topdown"], "--detector-run", runs["detector"], "--detection-threshold", "0.3",
               "--out", out), "takes no --detection-threshold"),
        (_args(root, "--zoo", "td-nothing", "--zoo-dir", str(tmp_path), "--out", out), "'td-nothing' is not in"),
        (["predict", "--images", str(tmp_path), "--run", runs["bottomup"], "--out", out, "--quiet"], "no images"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert main(["predict", "--images", str(tmp_path), "--run", runs["bottomup"], "--out", out, "--quiet"]) == 2
    assert "broken.png: not a readable image" in capsys.readouterr().err
    # a run folder whose checkpoint belongs to another model
    import shutil

    fake = root / "cache" / "runs" / "bottomup-fake"
    shutil.copytree(root / "cache" / "runs" / runs["bottomup"], fake)
    shutil.copy(root / "cache" / "runs" / runs["detector"] / "checkpoint.msgpack", fake / "checkpoint.msgpack")
    assert main(_args(root, "--run", "bottomup-fake", "--out", out)) == 2
    assert "does not fit" in capsys.readouterr().err
    shutil.rmtree(fake)
    assert not (tmp_path / "r.json").exists()


def test_run_folders_describe_their_run(setup, monkeypatch):
    from posekit.checkpoint import find_runs, read_run

    root, runs = setup
    monkeypatch.setenv("POSEKIT_CACHE", str(root / "cache"))
    assert [p.name for p in find_runs("bottomup", input_size=64, steps=2)] == [runs["bottomup"]]
    assert [p.name for p in find_runs("topdown-pose", input_size=(32, 24))] == [runs["topdown"]]
    assert find_runs("bottomup", steps=3) == [] and find_runs("nothing") == []
    info = read_run(root / "cache" / "runs" / runs["bottomup"])
    assert info["config"]["model"] == "associative-embedding" and info["name"] == "bottomup"
    with pytest.raises(ValueError, match="not a run folder"):
        read_run(root)
    assert np.isfinite(info["config"]["lr"])
