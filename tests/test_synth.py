"""posekit.synth: synthetic people whose labels agree with their pixels, reproducibly."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO as PyCOCO

from posekit import cli, synth

S = 64
SCENE_S = 128


@pytest.fixture(scope="module")
def crops():
    return synth.render_single(96, seed=3, size=S, return_masks=True)


@pytest.fixture(scope="module")
def scenes():
    return synth.render_scenes(12, seed=4, size=SCENE_S, max_people=5, crowd_prob=0.5, return_masks=True)


def test_single_batch_has_documented_shapes_and_dtypes(crops):
    n = 96
    assert crops["images"].shape == (n, S, S, 3) and crops["images"].dtype == np.uint8
    assert crops["keypoints"].shape == (n, 17, 3) and crops["keypoints"].dtype == np.float32
    assert crops["bboxes"].shape == (n, 4) and crops["bboxes"].dtype == np.float32
    assert crops["areas"].shape == (n,) and crops["head_boxes"].shape == (n, 4)
    assert crops["yaw"].shape == (n,) and ((crops["yaw"] >= 0) & (crops["yaw"] < 2 * np.pi)).all()
    assert crops["pose"].shape == (n,) and set(crops["pose"]) <= set(range(len(synth.POSE_NAMES)))
    assert set(np.unique(crops["keypoints"][..., 2])) <= {0.0, 1.0, 2.0}


def test_poses_and_views_vary(crops):
    assert len(set(crops["pose"].tolist())) >= 6
    v = crops["keypoints"][..., 2]
    assert (v == 2).mean() > 0.5 and (v == 1).mean() > 0.1  # mostly visible, self-occlusion common


def test_same_seed_gives_identical_arrays(crops):
    again = synth.render_single(96, seed=3, size=S, return_masks=True)
    for key, value in crops.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    other = synth.render_single(8, seed=4, size=S)
    assert not np.array_equal(other["images"], crops["images"][:8])


def test_chunked_rendering_matches_one_call(crops):
    parts = [synth.render_single(n, seed=3, size=S, start=a) for a, n in ((0, 30), (30, 41), (71, 25))]
    for key in ("images", "keypoints", "bboxes", "areas", "head_boxes", "yaw", "pose"):
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), crops[key], err_msg=key)


def test_unlabelled_keypoints_are_zero_and_outside_the_image(crops):
    kp = crops["keypoints"]
    zero = kp[..., 2] == 0
    assert zero.any(), "truncated crops should cut some keypoints"
    assert (kp[zero][:, :2] == 0).all()
    inside = (kp[..., :2] > -0.5).all(-1) & (kp[..., :2] < S - 0.5).all(-1)
    assert inside[~zero].all()


def test_visible_keypoints_lie_on_the_person_mask(crops):
    kp, masks = crops["keypoints"], crops["masks"]
    n, j = np.nonzero(kp[..., 2] == 2)
    ix = np.floor(kp[n, j, 0] + 0.5).astype(int)
    iy = np.floor(kp[n, j, 1] + 0.5).astype(int)
    assert masks[n, iy, ix].all()


def test_area_is_mask_pixel_count_and_bbox_is_mask_extent(crops):
    masks = crops["masks"]
    np.testing.assert_array_equal(crops["areas"], masks.sum((1, 2)))
    for i in range(len(masks)):
        ys, xs = np.nonzero(masks[i])
        want = [xs.min() - 0.5, ys.min() - 0.5, xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        np.testing.assert_allclose(crops["bboxes"][i], want)


def test_bbox_contains_every_visible_keypoint(crops):
    kp, box = crops["keypoints"], crops["bboxes"]
    vis = kp[..., 2] == 2
    x, y = kp[..., 0], kp[..., 1]
    bx, by, bw, bh = (box[:, i : i + 1] for i in range(4))
    ok = (x >= bx) & (x <= bx + bw) & (y >= by) & (y <= by + bh)
    assert ok[vis].all()


def test_back_view_hides_the_face_and_front_view_shows_it():
    back = synth.render_single(32, seed=5, size=S, yaw=np.pi, pose="standing", truncation=0.0)
    front = synth.render_single(32, seed=5, size=S, yaw=0.0, pose="standing", truncation=0.0)
    np.testing.assert_allclose(back["yaw"], np.pi)
    face = [0, 1, 2]  # nose, eyes
    # COCO's rule: a hidden face point is not labelled (v = 0, at 0, 0); face_labels="all" labels it v = 1
    assert (back["keypoints"][:, face, 2] == 0).mean() > 0.9
    assert np.all(back["keypoints"][:, face, :2][back["keypoints"][:, face, 2] == 0] == 0)
    assert (front["keypoints"][:, face, 2] == 2).mean() > 0.8
    old = synth.render_single(32, seed=5, size=S, yaw=np.pi, pose="standing", truncation=0.0, face_labels="all")
    assert (old["keypoints"][:, face, 2] == 1).mean() > 0.9
    np.testing.assert_array_equal(old["images"], back["images"])  # the same people, other labels
    body = slice(5, 17)  # hidden joints keep v = 1 under both rules
    np.testing.assert_array_equal(old["keypoints"][:, body], back["keypoints"][:, body])
    with pytest.raises(ValueError, match="face_labels must be one of"):
        synth.render_single(2, seed=5, size=S, face_labels="some")


def test_side_view_collapses_the_shoulders_and_hides_the_far_ear():
    kw = dict(seed=6, size=S, pose="standing", truncation=0.0)
    side = synth.render_single(32, yaw=np.pi / 2, **kw)
    front = synth.render_single(32, yaw=0.0, **kw)

    def width(b):
        kp = b["keypoints"]
        return np.abs(kp[:, 5, 0] - kp[:, 6, 0]) / b["bboxes"][:, 3]

    assert np.median(width(side)) < 0.35 * np.median(width(front))
    # Facing image right (yaw = π/2) the person turns the right side to the camera; the left ear is behind the head.
    assert (side["keypoints"][:, 3, 2] == 0).mean() > 0.8  # hidden, so not labelled (COCO's rule for the face)
    assert (side["keypoints"][:, 4, 2] == 2).mean() > 0.6


def test_pose_knob_and_bad_pose():
    b = synth.render_single(4, seed=0, size=S, pose="sitting")
    assert (b["pose"] == synth.POSE_NAMES.index("sitting")).all()
    with pytest.raises(ValueError, match="unknown pose"):
        synth.render_single(4, seed=0, size=S, pose="flying")


def test_scene_people_have_consistent_labels(scenes):
    assert scenes["images"].shape == (12, SCENE_S, SCENE_S, 3)
    n_people = [len(p["areas"]) for p in scenes["people"]]
    assert min(n_people) >= 1 and max(n_people) <= 6  # 5 people + 1 crowd region
    for pp in scenes["people"]:
        masks = pp["masks"]
        np.testing.assert_array_equal(pp["areas"], masks.sum((1, 2)))
        assert not (masks.sum(0) > 1).any(), "a pixel belongs to one person at most"
        kp = pp["keypoints"]
        p, j = np.nonzero(kp[..., 2] == 2)
        ix = np.floor(kp[p, j, 0] + 0.5).astype(int)
        iy = np.floor(kp[p, j, 1] + 0.5).astype(int)
        assert masks[p, iy, ix].all()
        zero = kp[..., 2] == 0
        assert (kp[zero][:, :2] == 0).all()
        crowd = pp["iscrowd"] == 1
        assert (kp[crowd][..., 2] == 0).all()
    assert any(pp["iscrowd"].any() for pp in scenes["people"])
    areas = np.concatenate([pp["areas"] for pp in scenes["people"]])
    assert (areas < 32**2).any() and (areas > 32**2).any()


def test_scene_chunks_match_one_call(scenes):
    a = synth.render_scenes(5, seed=4, size=SCENE_S, max_people=5, crowd_prob=0.5)
    b = synth.render_scenes(7, seed=4, size=SCENE_S, max_people=5, crowd_prob=0.5, start=5)
    np.testing.assert_array_equal(np.concatenate([a["images"], b["images"]]), scenes["images"])
    for got, want in zip(a["people"] + b["people"], scenes["people"]):
        for key in ("keypoints", "bboxes", "areas", "iscrowd"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def read_dataset(path):
    files = sorted((path / "images").glob("*.png"))
    return (path / "annotations.json").read_bytes(), [f.read_bytes() for f in files]


def test_written_dataset_is_reproducible_and_loads_in_pycocotools(tmp_path):
    a = synth.write_dataset(tmp_path / "a", "single", 10, seed=2, progress=False)
    b = synth.write_dataset(tmp_path / "b", "single", 10, seed=2, progress=False)
    ja, pa = read_dataset(a)
    jb, pb = read_dataset(b)
    assert ja == jb and pa == pb and len(pa) == 10
    with contextlib.redirect_stdout(io.StringIO()):
        coco = PyCOCO(str(a / "annotations.json"))
    assert len(coco.getImgIds()) == 10 and len(coco.getAnnIds()) == 10
    ann = coco.loadAnns(coco.getAnnIds())[0]
    assert len(ann["keypoints"]) == 51 and ann["num_keypoints"] == sum(v > 0 for v in ann["keypoints"][2::3])
    cat = coco.loadCats(1)[0]
    assert cat["keypoints"][0] == "nose" and min(min(link) for link in cat["skeleton"]) == 1


def test_scene_dataset_has_crowd_regions_without_keypoints(tmp_path):
    out = synth.write_dataset(tmp_path / "s", "scene", 6, seed=1, size=128, progress=False, crowd_prob=1.0)
    data = json.loads((out / "annotations.json").read_text())
    crowd = [a for a in data["annotations"] if a["iscrowd"]]
    assert len(crowd) >= 1 and all(a["num_keypoints"] == 0 and a["area"] > 0 for a in crowd)
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kind", "single", "--num-images", "0"], "num must be a positive integer"),
        (["--kind", "blob", "--num-images", "2"], "kind must be"),
        (["--kind", "single", "--num-images", "2", "--size", "8"], "size must be"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    rc = cli.main(["synth", "--out", str(tmp_path / "d"), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("posekit synth: error:") and message in err and "\n" not in err


def test_cli_refuses_a_file_as_output(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("not a folder")
    rc = cli.main(["synth", "--out", str(target), "--num-images", "2", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "is a file" in err and "\n" not in err


def test_cli_writes_a_dataset(tmp_path, capsys):
    rc = cli.main(["synth", "--out", str(tmp_path / "d"), "--num-images", "3", "--seed", "1", "--quiet"])
    assert rc == 0 and len(list((tmp_path / "d" / "images").glob("*.png"))) == 3


def test_interrupted_write_leaves_no_dataset(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "to_coco", boom)
    with pytest.raises(KeyboardInterrupt):
        synth.write_dataset(tmp_path / "d", "single", 4, seed=0, progress=False)
    assert not (tmp_path / "d").exists()
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone too
