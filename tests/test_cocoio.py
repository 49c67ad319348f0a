"""posekit.cocoio: COCO keypoint files that pycocotools reads, and clear errors for broken ones."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math

import numpy as np
import pytest
from pycocotools.coco import COCO as PyCOCO

from posekit import cocoio
from posekit.cocoio import CocoFormatError, CocoFormatWarning
from posekit.skeleton import COCO, MPII


def small_dataset(seed: int = 0) -> dict:
    """Two images, three people (one with unlabelled joints), one crowd region."""
    rng = np.random.default_rng(seed)
    images = [
        {"id": 7, "file_name": "a.png", "width": 64, "height": 48},
        {"id": 9, "file_name": "b.png", "width": 64, "height": 48},
    ]
    anns = []
    for image_id, n in ((7, 2), (9, 1)):
        for _ in range(n):
            kp = np.zeros((17, 3))
            kp[:, :2] = rng.uniform(5, 40, size=(17, 2)).round(1)
            kp[:, 2] = rng.choice([0, 1, 2], size=17)
            kp[kp[:, 2] == 0, :2] = 0
            anns.append({"image_id": image_id, "keypoints": kp})
    anns.append({"image_id": 9, "keypoints": np.zeros((17, 3)), "bbox": [1, 1, 10, 10], "area": 80.0, "iscrowd": 1})
    return cocoio.make_coco(images, anns)


def quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def test_saved_file_loads_in_pycocotools_with_same_content(tmp_path):
    coco = small_dataset()
    path = tmp_path / "person_keypoints.json"
    cocoio.save_coco(coco, path)
    ref = quiet(PyCOCO, str(path))
    assert sorted(ref.getImgIds()) == [7, 9]
    assert len(ref.getAnnIds()) == len(coco["annotations"]) == 4
    assert ref.loadCats(1)[0]["keypoints"] == list(COCO.names)
    assert ref.loadCats(1)[0]["skeleton"][0] == [16, 14]  # 1-based on disk
    for ann in coco["annotations"]:
        theirs = ref.loadAnns(ann["id"])[0]
        np.testing.assert_array_equal(theirs["keypoints"], ann["keypoints"])
        assert theirs["num_keypoints"] == np.count_nonzero(np.asarray(ann["keypoints"])[2::3] > 0)
        assert theirs["bbox"] == ann["bbox"] and theirs["area"] == ann["area"]
    arrays = cocoio.annotation_arrays(cocoio.load_coco(path), image_id=7)
    assert arrays["keypoints"].shape == (2, 17, 3)
    np.testing.assert_array_equal(arrays["keypoints"].reshape(2, -1), [a["keypoints"] for a in ref.imgToAnns[7]])


def test_pycocotools_style_dict_and_loadres_results_load_in_posekit(tmp_path):
    # Ground truth built by hand the way pycocotools users write it: ints, no iscrowd, json.dump.
    kp = [10, 12, 2] * 8 + [0, 0, 0] * 9
    gt = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 100, "height": 80}],
        "annotations": [
            {"id": 5, "image_id": 1, "category_id": 1, "keypoints": kp, "num_keypoints": 8,
             "bbox": [5, 6, 20, 30], "area": 450}
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names), "skeleton": []}],
    }  # fmt: skip
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    loaded = cocoio.load_coco(path)
    assert loaded["annotations"][0]["iscrowd"] == 0  # defaulted as pycocotools does
    assert "iscrowd" not in gt["annotations"][0]  # the input is not modified
    ref = quiet(PyCOCO, str(path))
    results = [{"image_id": 1, "category_id": 1, "keypoints": [11.5, 12.5, 0.9] * 17, "score": 0.8}]
    res = quiet(ref.loadRes, results)
    dets = cocoio.load_coco(res.dataset)
    assert len(dets["annotations"]) == 1 and dets["annotations"][0]["score"] == 0.8
    assert cocoio.keypoints_array(dets).shape == (1, 17, 3)


def test_category_keypoint_list_sets_the_number_of_joints():
    kp = np.zeros((16, 3))
    kp[:, :2], kp[:, 2] = 10.0, 2
    coco = cocoio.make_coco([{"id": 1}], [{"image_id": 1, "keypoints": kp}], kset=MPII)
    assert cocoio.keypoints_array(coco).shape == (1, 16, 3)
    with pytest.raises(CocoFormatError, match="3\\*J = 51"):
        cocoio.load_coco({**coco, "categories": [{"id": 1, "name": "person"}]}, kset=COCO)


def _set(path, value):
    """An edit that sets annotations[1][path] (or deletes it when value is ...)."""

    def edit(coco):
        ann = coco["annotations"][1]
        if value is ...:
            del ann[path]
        else:
            ann[path] = value(ann[path]) if callable(value) else value

    return edit


def _set_kp(index, value):
    def edit(coco):
        coco["annotations"][1]["keypoints"][index] = value

    return edit


# (case, edit of the dataset's annotation id=2, words the message must contain)
BROKEN = [
    ("missing image_id", _set("image_id", ...), "missing required field(s) ['image_id']"),
    ("missing keypoints", _set("keypoints", ...), "['keypoints']"),
    ("missing bbox", _set("bbox", ...), "['bbox']"),
    ("missing area", _set("area", ...), "['area']"),
    ("missing category_id", _set("category_id", ...), "['category_id']"),
    ("keypoints too short", _set("keypoints", lambda k: k[:-3]), "51 values"),
    ("keypoints too long", _set("keypoints", lambda k: k + [0, 0, 0]), "found 54"),
    ("keypoints not a list", _set("keypoints", "oops"), "must be a list of numbers"),
    ("keypoint is a string", _set_kp(3, "1.0"), "keypoints[3] must be a number"),
    ("visibility 3", _set_kp(2, 3), "visibility of keypoint 0 (nose)"),
    ("visibility -1", _set_kp(17, -1), "visibility of keypoint 5"),
    ("NaN keypoint", _set_kp(4, math.nan), "keypoints[4] is not finite"),
    ("infinite area", _set("area", math.inf), "area[0] is not finite"),
    ("NaN bbox", _set("bbox", [0, 0, math.nan, 1]), "bbox[2] is not finite"),
    ("negative box width", _set("bbox", [0, 0, -1, 5]), "negative size"),
    ("bbox of 3 values", _set("bbox", [0, 0, 5]), "4 values"),
    ("negative area", _set("area", -3.0), "area is negative"),
    ("iscrowd 2", _set("iscrowd", 2), "iscrowd must be 0 or 1"),
    ("dangling image_id", _set("image_id", 123), "image_id=123 is not in 'images'"),
    ("dangling category_id", _set("category_id", 4), "category_id=4 is not in 'categories'"),
    ("num_keypoints disagrees", _set("num_keypoints", lambda n: n + 1), "keypoints have v > 0"),
    ("duplicate annotation id", lambda c: c["annotations"][2].update(id=2), "duplicate annotation id"),
    ("NaN score", _set("score", math.nan), "score must be a finite number"),
]


@pytest.mark.parametrize("case, edit, words", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_annotation_raises_error_naming_file_annotation_and_problem(tmp_path, case, edit, words):
    coco = json.loads(json.dumps(small_dataset()))
    edit(coco)
    path = tmp_path / "broken_keypoints.json"
    path.write_text(json.dumps(coco))  # NaN/Infinity written as JSON's NaN extension, as Python does
    with pytest.raises(CocoFormatError) as info:
        cocoio.load_coco(path)
    msg = str(info.value)
    assert "broken_keypoints.json" in msg
    assert "annotation id=2" in msg
    assert words in msg
    assert not isinstance(info.value, (KeyError, IndexError))


FILE_LEVEL = [
    ("not JSON", lambda p: p.write_text("{'images': []"), "not valid JSON"),
    ("a list, not an object", lambda p: p.write_text("[]"), "top level must be a JSON object"),
    ("missing categories", lambda p: p.write_text('{"images": [], "annotations": []}'), "['categories']"),
    ("images not a list", lambda p: p.write_text('{"images": {}, "annotations": [], "categories": []}'), "list"),
]


@pytest.mark.parametrize("case, write, words", FILE_LEVEL, ids=[f[0] for f in FILE_LEVEL])
def test_broken_file_raises_error_naming_file_and_problem(tmp_path, case, write, words):
    path = tmp_path / "bad_file.json"
    write(path)
    with pytest.raises(CocoFormatError, match="bad_file.json") as info:
        cocoio.load_coco(path)
    assert words in str(info.value)


def test_duplicate_image_id_is_named(tmp_path):
    coco = small_dataset()
    coco["images"][1]["id"] = 7
    with pytest.raises(CocoFormatError, match="duplicate image id=7"):
        cocoio.load_coco(coco)


def test_missing_iscrowd_and_num_keypoints_are_defaulted():
    coco = copy.deepcopy(small_dataset())
    ann = coco["annotations"][0]
    expected = ann.pop("num_keypoints")
    ann.pop("iscrowd")
    loaded = cocoio.load_coco(coco)
    assert loaded["annotations"][0]["num_keypoints"] == expected
    assert loaded["annotations"][0]["iscrowd"] == 0


def test_num_keypoints_mismatch_can_warn_or_fix():
    coco = copy.deepcopy(small_dataset())
    true = coco["annotations"][0]["num_keypoints"]
    coco["annotations"][0]["num_keypoints"] = true + 2
    with pytest.warns(CocoFormatWarning, match="annotation id=1"):
        kept = cocoio.load_coco(coco, num_keypoints_mismatch="warn")
    assert kept["annotations"][0]["num_keypoints"] == true + 2
    with pytest.warns(CocoFormatWarning):
        fixed = cocoio.load_coco(coco, num_keypoints_mismatch="fix")
    assert fixed["annotations"][0]["num_keypoints"] == true


def test_save_refuses_invalid_dict_and_leaves_no_file(tmp_path):
    coco = copy.deepcopy(small_dataset())
    coco["annotations"][0]["keypoints"][2] = 7
    path = tmp_path / "out.json"
    with pytest.raises(CocoFormatError, match="out.json"):
        cocoio.save_coco(coco, path)
    assert list(tmp_path.iterdir()) == []


def test_annotations_by_image_keeps_images_without_people():
    coco = small_dataset()
    coco = {**coco, "images": coco["images"] + [{"id": 11, "file_name": "c.png", "width": 8, "height": 8}]}
    groups = cocoio.annotations_by_image(cocoio.load_coco(coco))
    assert [len(groups[i]) for i in (7, 9, 11)] == [2, 2, 0]
    assert cocoio.keypoints_array(coco, image_id=11).shape == (0, 17, 3)
    arrays = cocoio.annotation_arrays(coco, image_id=9, include_crowd=False)
    assert arrays["bboxes"].shape == (1, 4) and arrays["iscrowd"].tolist() == [0]


def test_format_annotation_is_json_with_named_keypoints():
    ann = small_dataset()["annotations"][0]
    text = cocoio.format_annotation(ann)
    assert "# 16 right_ankle" in text
    stripped = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert json.loads(stripped)["keypoints"] == ann["keypoints"]


def test_load_images_reads_rgb_and_names_a_missing_file(tmp_path):
    from PIL import Image

    coco = small_dataset()
    Image.fromarray(np.full((48, 64, 3), 200, np.uint8)).save(tmp_path / "a.png")
    (img,) = cocoio.load_images(coco, tmp_path, [7])
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="image id=9.*b.png"):
        cocoio.load_images(coco, tmp_path, [9])


def test_annotation_without_id_is_named_by_its_index():
    coco = copy.deepcopy(small_dataset())
    del coco["annotations"][2]["id"]
    with pytest.raises(CocoFormatError, match=r"annotations\[2\]\): missing required field\(s\) \['id'\]"):
        cocoio.load_coco(coco)


def test_results_builders_write_what_the_evaluators_read():
    kp = np.arange(2 * 17 * 2, dtype=float).reshape(2, 17, 2)
    res = cocoio.keypoint_results(np.array([3, 4]), kp, np.array([0.9, 0.1]))
    assert res[0] == {"image_id": 3, "category_id": 1, "keypoints": [0.0, 1.0, 1.0] + res[0]["keypoints"][3:],
                      "score": 0.9}  # fmt: skip
    assert len(res[1]["keypoints"]) == 51 and res[1]["keypoints"][2::3] == [1.0] * 17
    assert all(type(r["image_id"]) is int for r in res)  # JSON-ready, not numpy scalars
    boxes = cocoio.box_results([7], [[1, 2, 3, 4]], [0.5], category_id=2)
    assert boxes == [{"image_id": 7, "category_id": 2, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}]
    with pytest.raises(ValueError, match=r"boxes: expected shape \(D, 4\)"):
        cocoio.box_results([7], [[1, 2, 3]], [0.5])
    with pytest.raises(ValueError, match="one per detection"):
        cocoio.keypoint_results([1, 2, 3], kp, [0.5, 0.5])


def test_annotation_builder_counts_keypoints_and_defaults_the_box():
    kp = np.zeros((17, 3))
    kp[[0, 5], :] = [[10.0, 20.0, 2], [30.0, 60.0, 1]]
    ann = cocoio.annotation(5, kp, ann_id=9, head_box=np.array([1.234, 2.0, 3.0, 4.0]), decimals=1)
    assert ann["num_keypoints"] == 2 and ann["bbox"] == [10.0, 20.0, 20.0, 40.0] and ann["area"] == 800.0
    assert ann["keypoints"][2] == 2 and type(ann["keypoints"][2]) is int and ann["head_box"][0] == 1.2
    assert cocoio.person_category()["skeleton"][0] == [i + 1 for i in COCO.links[0]]


def test_resample_images_copies_each_drawn_image_under_a_new_id():
    coco = small_dataset()
    res = [{"image_id": 9, "category_id": 1, "keypoints": [1.0] * 51, "score": 0.5},
           {"image_id": 7, "category_id": 1, "keypoints": [2.0] * 51, "score": 0.7}]  # fmt: skip
    g, r = cocoio.resample_images(coco, [9, 9, 7], res)
    assert [img["id"] for img in g["images"]] == [1, 2, 3]
    assert [img["file_name"] for img in g["images"]] == ["b.png", "b.png", "a.png"]
    assert [a["image_id"] for a in g["annotations"]] == [1, 1, 2, 2, 3, 3]  # image 9: a person and a crowd region
    assert [a["id"] for a in g["annotations"]] == [1, 2, 3, 4, 5, 6]
    assert [(d["image_id"], d["score"]) for d in r] == [(1, 0.5), (2, 0.5), (3, 0.7)]
    cocoio.validate_coco(g)  # a valid ground truth; the inputs are untouched
    assert [a["image_id"] for a in coco["annotations"]] == [7, 7, 9, 9] and res[0]["image_id"] == 9
    with pytest.raises(ValueError, match=r"image_ids: .*1 that are not \(first: 8\)"):
        cocoio.resample_images(coco, [7, 8])
