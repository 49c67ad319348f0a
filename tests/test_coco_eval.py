"""coco_eval must give pycocotools' numbers exactly (keypoints and boxes), on every kind of input."""

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval

from benchmarks.cases import random_box_eval_set, random_eval_set
from posekit import cli, metrics
from posekit.metrics import BOX_STAT_NAMES, STAT_NAMES, coco_eval


def _empty_results(cg):
    """What loadRes cannot make (it fails on an empty list): a result set with no detection."""
    dt = PyCOCO()
    dt.dataset = {"images": list(cg.dataset["images"]), "categories": copy.deepcopy(cg.dataset["categories"]),
                  "annotations": []}  # fmt: skip
    dt.createIndex()
    return dt


def pycoco(gt, results, sigmas=None, iou_type="keypoints", area_range=None):
    """pycocotools' numbers and its printed summary lines (inputs are copied: pycocotools edits them)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cg = PyCOCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        dt = cg.loadRes(copy.deepcopy(results)) if results else _empty_results(cg)
        E = COCOeval(cg, dt, iouType=iou_type)
        if sigmas is not None:
            E.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=float)
        if area_range is not None:
            E.params.areaRng[0] = list(area_range)
        E.evaluate()
        E.accumulate()
        E.summarize()
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith(" Average")]
    return np.array(E.stats), lines


def ours(gt, results, sigmas=None):
    return np.array([coco_eval(gt, results, sigmas=sigmas)[k] for k in STAT_NAMES])


def duplicate_people(gt, frac, rng):
    """Copy some GT people exactly (new ids): equal OKS values exercise pycocotools' tie rule."""
    anns = gt["annotations"]
    extra = [dict(a, id=len(anns) + i + 1) for i, a in enumerate(a for a in anns if rng.random() < frac)]
    gt["annotations"] = anns + extra


def add_second_category(gt, results):
    gt["categories"] = gt["categories"] + [dict(gt["categories"][0], id=2, name="robot")]
    n = len(gt["annotations"])
    gt["annotations"] += [dict(a, id=n + i + 1, category_id=2) for i, a in enumerate(gt["annotations"][::3])]
    results += [dict(r, category_id=2) for r in results[::2]] + [dict(results[0], category_id=7)]


SCENARIOS = {
    "plain": dict(),
    "crowds_and_unlabelled": dict(crowd_frac=0.25, unlabelled_frac=0.25),
    "empty_images": dict(empty_image_frac=0.3, no_det_image_frac=0.3),
    "many_dets": dict(dets_per_image=35),
    "few_dets": dict(dets_per_image=3, max_people=12),
    "crowded_images": dict(max_people=40, dets_per_image=60),
    "tied_scores": dict(tie_scores=True),
    "five_joints": dict(num_joints=5),
    "thirty_joints": dict(num_joints=30),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_coco_eval_matches_pycocotools(scenario, seed):
    kw = SCENARIOS[scenario]
    gt, results = random_eval_set(num_images=30, seed=seed, **kw)
    J = kw.get("num_joints", 17)
    sigmas = None if J == 17 else np.random.default_rng(seed).uniform(0.025, 0.11, J)
    ref, _ = pycoco(gt, results, sigmas)
    np.testing.assert_allclose(ours(gt, results, sigmas), ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("area_range", [(0, 32**2), (32**2, 64**2), (64**2, 1e10)])
def test_coco_eval_area_range_matches_pycocotools(area_range):
    gt, results = random_eval_set(num_images=30, seed=3, crowd_frac=0.1)
    ref, _ = pycoco(gt, results, area_range=area_range)
    got = np.array([coco_eval(gt, results, area_range=area_range)[k] for k in STAT_NAMES])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
    assert got[0] != ours(gt, results)[0]  # the range changes the number


def test_coco_eval_area_range_rejects_bad_ranges():
    gt, results = random_eval_set(num_images=3, seed=0)
    with pytest.raises(ValueError, match="area_range"):
        coco_eval(gt, results, area_range=(10, 5))


@pytest.mark.parametrize("seed", [0, 1])
def test_coco_eval_matches_pycocotools_with_duplicate_gt_and_ties(seed):
    gt, results = random_eval_set(num_images=30, seed=seed, tie_scores=True, crowd_frac=0.15)
    duplicate_people(gt, 0.3, np.random.default_rng(seed))
    results += copy.deepcopy(results[::4])  # identical detections too
    ref, _ = pycoco(gt, results)
    np.testing.assert_allclose(ours(gt, results), ref, rtol=0, atol=1e-9)


def test_coco_eval_matches_pycocotools_with_several_categories():
    gt, results = random_eval_set(num_images=30, seed=5)
    add_second_category(gt, results)  # includes a result of an unknown category, which COCOeval drops
    ref, _ = pycoco(gt, results)
    np.testing.assert_allclose(ours(gt, results), ref, rtol=0, atol=1e-9)


def test_coco_eval_matches_pycocotools_quirks_bbox_results_and_gt_id_zero():
    gt, results = random_eval_set(num_images=30, seed=7, id_offset=0)
    anns = gt["annotations"]
    regular = next(a for a in anns if not a["iscrowd"] and a["num_keypoints"] > 3)
    regular["id"] = 0  # (ids start at 1) a GT with id 0: pycocotools reads its matches as misses
    kps = np.array(regular["keypoints"], dtype=float).reshape(-1, 3)
    kps[:, 2] = 1
    results.append({"image_id": regular["image_id"], "category_id": 1, "keypoints": kps.ravel().tolist(), "score": 2.0})
    rng = np.random.default_rng(0)
    for r in results:  # a given bbox sets the detection area (loadRes' bbox branch)
        r["bbox"] = [0.0, 0.0, float(rng.uniform(10, 200)), float(rng.uniform(10, 200))]
    ref, _ = pycoco(gt, results)
    np.testing.assert_allclose(ours(gt, results), ref, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------- boxes

BOX_SCENARIOS = {
    "plain": dict(),
    "crowds": dict(crowd_frac=0.3),
    "empty_images": dict(empty_image_frac=0.3, no_det_image_frac=0.3),
    "several_categories": dict(num_categories=3),
    "over_100_dets": dict(dets_per_image=130, max_objects=20),
    "one_det": dict(dets_per_image=1),
    "tied_scores": dict(tie_scores=True, num_categories=2),
    "image_id_zero": dict(id_offset=0),
}


def ours_box(gt, results):
    return np.array([coco_eval(gt, results, iou_type="bbox")[k] for k in BOX_STAT_NAMES])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scenario", sorted(BOX_SCENARIOS))
def test_box_eval_matches_pycocotools(scenario, seed):
    gt, results = random_box_eval_set(num_images=30, seed=seed, **BOX_SCENARIOS[scenario])
    ref, lines = pycoco(gt, results, iou_type="bbox")
    assert len(ref) == 12
    np.testing.assert_allclose(ours_box(gt, results), ref, rtol=0, atol=1e-9)


def test_box_eval_matches_pycocotools_on_quirks():
    """Identical boxes (tied IoU), duplicated GT, a GT with id 0, an unknown category, an image with no GT."""
    gt, results = random_box_eval_set(num_images=30, seed=9, num_categories=2, tie_scores=True, crowd_frac=0.2)
    n = len(gt["annotations"])
    gt["annotations"] += [dict(a, id=n + i + 1) for i, a in enumerate(gt["annotations"][::5])]
    gt["annotations"][3]["id"] = 0
    results += copy.deepcopy(results[::4]) + [dict(results[0], category_id=9)]
    gt["images"].append({"id": 999, "width": 640, "height": 480})
    results += [dict(r, image_id=999) for r in results[:5]]
    ref, _ = pycoco(gt, results, iou_type="bbox")
    np.testing.assert_allclose(ours_box(gt, results), ref, rtol=0, atol=1e-9)


def test_box_eval_of_empty_results_and_of_perfect_boxes():
    gt, results = random_box_eval_set(num_images=10, seed=0, crowd_frac=0.0)
    np.testing.assert_array_equal(ours_box(gt, []), pycoco(gt, [], iou_type="bbox")[0])
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt["annotations"]]  # fmt: skip
    stats = coco_eval(gt, perfect, iou_type="bbox")
    assert stats["AP"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)


def test_box_iou_against_a_crowd_uses_the_detection_area():
    d = np.array([[0.0, 0.0, 10, 10], [5.0, 5.0, 10, 10], [20.0, 0.0, 5, 5]])
    g = np.array([[0.0, 0.0, 100, 100], [0.0, 0.0, 10, 10], [0.0, 0.0, 10, 10]])
    iou = metrics.box_iou_pairs(d, g, np.array([True, False, False]))
    np.testing.assert_allclose(iou, [1.0, 25 / 175, 0.0])


def test_posekit_eval_prints_the_box_summary_and_a_per_image_csv(tmp_path, capsys):
    gt, results = random_box_eval_set(num_images=15, seed=2, num_categories=2)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    _, expected = pycoco(gt, results, iou_type="bbox")
    csv_path = tmp_path / "per_image.csv"
    args = ["eval", "--iou-type", "bbox", str(tmp_path / "gt.json"), str(tmp_path / "res.json")]
    assert cli.main(args + ["--per-image", str(csv_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:12] == expected and len(expected) == 12
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    dets = [r for r in rows if r["kind"] == "detection"]
    gts = [r for r in rows if r["kind"] == "ground_truth"]
    assert len(dets) == len(results) and len(gts) == len(gt["annotations"])
    assert sorted(int(r["id"]) for r in dets) == list(range(len(results)))  # each result's position in the file
    for r in dets[:20]:  # the row describes that result
        assert int(r["image_id"]) == results[int(r["id"])]["image_id"]
        assert float(r["score"]) == pytest.approx(results[int(r["id"])]["score"], rel=1e-5)
    assert all(0.0 <= float(r["best"]) <= 1.0 for r in rows)
    assert [int(r["image_id"]) for r in rows] == sorted(int(r["image_id"]) for r in rows)  # sorted by image
    # a true positive at 0.5 has a GT of IoU >= 0.5 in its image
    assert all(float(r["best"]) >= 0.5 for r in dets if r["tp50"] == "1")


def test_pr_curve_is_what_the_ap_averages():
    gt, results = random_eval_set(num_images=30, seed=1)
    ev = metrics.evaluate(gt, results)
    rec, prec = ev.pr_curve(iou=0.5)
    assert rec.shape == prec.shape == (101,)
    assert np.all(np.diff(prec) <= 1e-12)  # the envelope never rises with recall
    assert prec.mean() == pytest.approx(ev.stats["AP50"], abs=1e-12)
    with pytest.raises(ValueError, match="iou"):
        ev.pr_curve(iou=0.52)


def no_annotations(gt, results):
    gt["annotations"] = []


def string_image_ids(gt, results):
    for item in gt["images"] + gt["annotations"] + results:
        key = "id" if "width" in item else "image_id"
        item[key] = f"img{item[key]}"


def detections_on_an_image_without_people(gt, results):
    gt["images"].append({"id": 999, "width": 640, "height": 480})
    results += [dict(r, image_id=999) for r in results[:7]]


@pytest.mark.parametrize("edit", [no_annotations, string_image_ids, detections_on_an_image_without_people])
def test_coco_eval_matches_pycocotools_on_edge_sets(edit):
    gt, results = random_eval_set(num_images=10, seed=11)
    edit(gt, results)
    ref, _ = pycoco(gt, results)
    np.testing.assert_allclose(ours(gt, results), ref, rtol=0, atol=1e-9)


def test_coco_eval_without_any_regular_gt_gives_minus_one_like_pycocotools():
    gt, results = random_eval_set(num_images=5, seed=0, crowd_frac=1.0)
    ref, _ = pycoco(gt, results)
    assert np.all(ref == -1)
    np.testing.assert_array_equal(ours(gt, results), ref)


def test_custom_keypoint_count_needs_sigmas():
    gt, results = random_eval_set(num_images=3, seed=0, num_joints=5)
    with pytest.raises(ValueError, match="sigmas"):
        coco_eval(gt, results)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda gt, res: res[0].update(keypoints=res[0]["keypoints"][:-3]), "expected 51 values"),
        (lambda gt, res: res[1]["keypoints"].__setitem__(4, float("nan")), "finite"),
        (lambda gt, res: res[2].update(image_id=10**6), "image ids not in the ground truth"),
        (lambda gt, res: gt["annotations"][0].update(area=-5.0), "area"),
        (lambda gt, res: res[0].update(score=float("inf")), "score"),
        (lambda gt, res: res[0].pop("score"), "score"),
    ],
)
def test_coco_eval_rejects_bad_input(mutate, message):
    gt, results = random_eval_set(num_images=5, seed=0)
    mutate(gt, results)
    with pytest.raises(ValueError, match=message):
        coco_eval(gt, results)


def test_empty_results_score_zero_as_pycocotools_does_for_no_detections():
    gt, _ = random_eval_set(num_images=5, seed=0)
    np.testing.assert_array_equal(ours(gt, []), pycoco(gt, [])[0])
    assert coco_eval(gt, [])["AP"] == 0.0


# ----------------------------------------------------------------------------- properties


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_permuting_detections_with_distinct_scores_changes_nothing(seed, perm_seed):
    gt, results = random_eval_set(num_images=8, seed=seed)
    for i, r in enumerate(results):
        r["score"] = 0.5 + 1e-4 * i  # distinct
    shuffled = [results[i] for i in np.random.default_rng(perm_seed).permutation(len(results))]
    assert coco_eval(gt, shuffled) == coco_eval(gt, results)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    shift=st.tuples(st.floats(-500, 500), st.floats(-500, 500)),
    scale=st.floats(0.1, 10.0),
)
def test_oks_is_invariant_to_translation_and_to_scaling_with_area(seed, shift, scale):
    rng = np.random.default_rng(seed)
    J = 17
    gt = np.concatenate([rng.uniform(0, 300, (3, J, 2)), rng.integers(0, 3, (3, J, 1))], -1)
    gt[0, :, 2] = 0  # one GT without labelled joints: the box branch
    boxes = np.c_[rng.uniform(0, 200, (3, 2)), rng.uniform(5, 100, (3, 2))]
    dt = gt[None, :, :, :2].repeat(2, 0).reshape(6, J, 2) + rng.normal(0, 15, (6, J, 2))
    areas = rng.uniform(100, 40_000, 3)
    base = metrics.oks(dt, gt, areas, gt_bboxes=boxes)
    t = np.array(shift)
    moved = gt.copy()
    moved[..., :2] += t
    moved_boxes = boxes + np.r_[t, 0, 0]
    np.testing.assert_allclose(metrics.oks(dt + t, moved, areas, gt_bboxes=moved_boxes), base, atol=1e-9)
    scaled = gt.copy()
    scaled[..., :2] *= scale
    got = metrics.oks(dt * scale, scaled, areas * scale**2, gt_bboxes=boxes * scale)
    np.testing.assert_allclose(got, base, atol=1e-9)


# ----------------------------------------------------------------------------- CLI


def test_posekit_eval_prints_pycocotools_summary(tmp_path, capsys):
    gt, results = random_eval_set(num_images=20, seed=3)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    _, expected = pycoco(gt, results)
    assert cli.main(["eval", str(tmp_path / "gt.json"), str(tmp_path / "res.json")]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    assert len(expected) == 10


def test_posekit_eval_with_custom_sigmas_and_bad_input(tmp_path, capsys):
    gt, results = random_eval_set(num_images=10, seed=4, num_joints=4)
    sig = [0.05, 0.06, 0.07, 0.08]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    _, expected = pycoco(gt, results, sig)
    args = ["eval", str(tmp_path / "gt.json"), str(tmp_path / "res.json")]
    assert cli.main(args + ["--sigmas", *map(str, sig)]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    assert cli.main(args) == 2  # 4 keypoints without sigmas: a one-line error, no traceback
    assert "sigmas" in capsys.readouterr().err
    assert cli.main(args + ["--sigmas", "0.05", "0.06"]) == 2  # 2 sigmas for 4 keypoints
    assert "sigmas: expected 4 values (one per keypoint), found 2" in capsys.readouterr().err


def test_posekit_synth_then_eval_end_to_end(tmp_path):
    """The installed `posekit` command: render a dataset, score jittered predictions, match pycocotools."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("posekit", path=str(Path(sys.executable).parent)) or shutil.which("posekit")
    assert exe, "the `posekit` console script is not installed (pip install -e .)"
    out = tmp_path / "scenes"
    run = subprocess.run(
        [exe, "synth", "--out", str(out), "--kind", "scene", "--num-images", "6", "--seed", "2", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    gt = json.loads((out / "annotations.json").read_text())
    rng = np.random.default_rng(0)
    results = []
    for ann in gt["annotations"]:
        if ann["iscrowd"] or ann["num_keypoints"] == 0:
            continue
        k = np.array(ann["keypoints"], float).reshape(-1, 3)
        k[:, :2] += rng.normal(0, 2.0, (len(k), 2))
        results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": k.ravel().tolist(),
                        "score": float(rng.uniform(0.5, 1))})  # fmt: skip
    (tmp_path / "res.json").write_text(json.dumps(results))
    run = subprocess.run([exe, "eval", str(out / "annotations.json"), str(tmp_path / "res.json")],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    _, expected = pycoco(gt, results)
    assert run.stdout.splitlines() == expected


# ----------------------------------------------------------------------------- bad files, clear messages


def test_truncated_json_names_the_file_and_the_position(tmp_path, capsys):
    gt, results = random_eval_set(num_images=3, seed=0)
    good, cut = tmp_path / "res.json", tmp_path / "gt.json"
    good.write_text(json.dumps(results))
    text = json.dumps(gt)
    cut.write_text(text[: len(text) // 2])  # a download that stopped half-way
    assert cli.main(["eval", str(cut), str(good)]) == 2
    err = capsys.readouterr().err
    assert str(cut) in err and "line 1, column" in err and "truncated" in err and "Traceback" not in err
    assert err.count("\n") == 1
    from posekit.cocoio import CocoFormatError, load_coco

    with pytest.raises(CocoFormatError, match=r"gt\.json: not valid JSON: .* at line 1, column \d+"):
        load_coco(cut)


def test_unwritable_outputs_name_the_path_the_user_gave(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert cli.main(["synth", "--out", str(blocker / "scenes"), "--num-images", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {blocker / 'scenes'}" in err and ".tmp" not in err
    gt, results = random_eval_set(num_images=3, seed=0)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    args = ["eval", str(tmp_path / "gt.json"), str(tmp_path / "res.json"), "--per-image", str(blocker / "x.csv")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert f"cannot write {blocker / 'x.csv'}" in err and ".tmp" not in err


@pytest.mark.parametrize("iou_type", ["keypoints", "bbox"])
def test_matching_in_small_chunks_gives_the_same_numbers(iou_type, monkeypatch):
    """Memory stays bounded because images are matched a chunk at a time; the chunking must change nothing."""
    from posekit.metrics import coco

    make = random_eval_set if iou_type == "keypoints" else random_box_eval_set
    gt, results = make(num_images=40, seed=3)
    whole = coco_eval(gt, results, iou_type=iou_type)
    monkeypatch.setattr(coco, "MAX_PAIRS_PER_CHUNK", 37)  # many chunks, some of a single image
    assert coco_eval(gt, results, iou_type=iou_type) == whole


def test_oks_is_bit_identical_to_pycocotools_compute_oks():
    """Not merely close: the same float, so a comparison with a threshold can never flip."""
    gt, results = random_eval_set(num_images=25, seed=6, unlabelled_frac=0.2)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = PyCOCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        E = COCOeval(cg, cg.loadRes(copy.deepcopy(results)), iouType="keypoints")
        E.evaluate()
    compared = 0
    for (img, cat), ref in E.ious.items():
        if len(ref) == 0:
            continue
        gts, dts = E._gts[img, cat], E._dts[img, cat]
        dts = [dts[i] for i in np.argsort([-d["score"] for d in dts], kind="mergesort")][:20]
        ours_ = metrics.oks(
            np.array([d["keypoints"] for d in dts]).reshape(len(dts), -1, 3),
            np.array([g["keypoints"] for g in gts]).reshape(len(gts), -1, 3),
            np.array([g["area"] for g in gts]),
            gt_bboxes=np.array([g["bbox"] for g in gts]),
        )
        np.testing.assert_array_equal(ours_, ref)
        compared += ref.size
    assert compared > 1000
