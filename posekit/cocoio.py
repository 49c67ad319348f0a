"""COCO person_keypoints JSON: read, validate, build and write: the one place that builds COCO records.

Builders (every other module and chapter calls these): `person_category`, `annotation`, `make_coco`
(a whole ground-truth dict), `keypoint_results` and `box_results` (results lists as evaluators read them),
`resample_images` (a bootstrap sample of ground truth and results).
Readers: `read_json` (any JSON file, with the position of a syntax error), `load_coco` (read and validate).

A COCO keypoint file is one JSON object with three lists::

    {"images":      [{"id", "file_name", "width", "height"}, ...],
     "annotations": [{"id", "image_id", "category_id", "keypoints": [x1, y1, v1, ...],
                      "num_keypoints", "bbox": [x, y, w, h], "area", "iscrowd"}, ...],
     "categories":  [{"id": 1, "name": "person", "keypoints": [names], "skeleton": [[i, j] 1-based]}]}

Fields, following what pycocotools reads (``COCO.createIndex`` and ``COCOeval``):

* required: ``id``, ``image_id``, ``category_id``, ``keypoints``, ``bbox``, ``area``. COCOeval reads the box
  and the area of every ground-truth person (OKS scale, area ranges) and indexes by the three ids.
* defaulted: ``iscrowd`` -> 0 (pycocotools treats a missing flag as 0); ``num_keypoints`` -> the number of
  keypoints with v > 0 (its definition; pycocotools would fail with a KeyError on ground truth without it, so
  a file written by :func:`save_coco` always carries it).

Where ``num_keypoints`` is present but disagrees with the v > 0 count, :func:`load_coco` raises by default:
COCOeval ignores people with ``num_keypoints == 0``, so a wrong count silently changes AP. Pass
``num_keypoints_mismatch="warn"`` (keep the file's value) or ``"fix"`` (replace it by the count) to load
such a file anyway.

Annotations that carry a ``score`` are detections (a results file after pycocotools' ``loadRes``): their third
keypoint value is a confidence, not a visibility flag, so only its finiteness is checked there.

Every problem raises :class:`CocoFormatError` naming the file, the annotation id and the problem.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from posekit.io import atomic_write_json
from posekit.skeleton import COCO, KeypointSet

REQUIRED_FIELDS = ("id", "image_id", "category_id", "keypoints", "bbox", "area")
DEFAULTED_FIELDS = {"iscrowd": "0", "num_keypoints": "count of keypoints with v > 0"}
TOP_LEVEL = ("images", "annotations", "categories")
MISMATCH_MODES = ("error", "warn", "fix")


class CocoFormatError(ValueError):
    """A COCO keypoint file (or dict) that does not follow the format; the message says where and what."""


class CocoFormatWarning(UserWarning):
    """A COCO keypoint file with a fixable inconsistency (see ``num_keypoints_mismatch``)."""


def _is_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_NUMBER_TYPES = (int, float)


def _numbers(value, what: str) -> np.ndarray:
    """A flat list of JSON numbers as float64, or a message-ready ValueError."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list of numbers, found {type(value).__name__}")
    if not all(type(x) in _NUMBER_TYPES for x in value):  # fast path first; then numpy scalars, bool, str
        i = next((i for i, x in enumerate(value) if not _is_number(x)), None)
        if i is not None:
            raise ValueError(f"{what}[{i}] must be a number, found {value[i]!r}")
    arr = np.asarray(value, dtype=float)
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{what}[{i}] is not finite ({value[i]!r})")
    return arr


def load_coco(
    path_or_dict,
    kset: KeypointSet = COCO,
    *,
    num_keypoints_mismatch: str = "error",
) -> dict:
    """Read a COCO person_keypoints JSON file (or check a dict already loaded) and return the dict.

    Args:
      path_or_dict: a path to the JSON file, or the dict ``json.load`` returned.
      kset: the keypoint set used when a category has no ``keypoints`` list (J = ``kset.num_joints``).
      num_keypoints_mismatch: "error" (default), "warn" or "fix", for a ``num_keypoints`` that disagrees with
        the number of keypoints with v > 0.
    Returns a dict whose annotations all carry ``iscrowd`` and ``num_keypoints`` (defaults filled in; the
    input dict is not modified).
    Raises CocoFormatError naming the file, the annotation id and the problem.

    Used in chapter 1.
    """
    if isinstance(path_or_dict, dict):
        return validate_coco(path_or_dict, kset, source="<dict>", num_keypoints_mismatch=num_keypoints_mismatch)
    path = Path(os.fspath(path_or_dict))
    data = read_json(path, "COCO annotation file")
    return validate_coco(data, kset, source=str(path), num_keypoints_mismatch=num_keypoints_mismatch)


def read_json(path, what: str = "JSON file"):
    """The JSON value in `path`. A missing file is a FileNotFoundError, a truncated or malformed one a
    CocoFormatError naming the file and where the JSON breaks (line, column and character offset)."""
    path = Path(os.fspath(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise CocoFormatError(f"{path}: expected a {what}, found a folder") from None
    except UnicodeDecodeError as e:
        raise CocoFormatError(f"{path}: not UTF-8 text (byte {e.start}); expected a {what}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        end = " (the file ends there: truncated?)" if e.pos >= len(text.rstrip()) else ""
        raise CocoFormatError(
            f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno} (character {e.pos}){end}"
        ) from None


def validate_coco(
    coco,
    kset: KeypointSet = COCO,
    *,
    source: str = "<dict>",
    num_keypoints_mismatch: str = "error",
) -> dict:
    """Check a loaded COCO keypoint dict; return a copy with defaulted fields filled in.

    See the module docstring for the rules; `source` names the input in error messages.
    """
    if num_keypoints_mismatch not in MISMATCH_MODES:
        raise ValueError(f"num_keypoints_mismatch must be one of {MISMATCH_MODES}, got {num_keypoints_mismatch!r}")

    def fail(msg: str):
        raise CocoFormatError(f"{source}: {msg}")

    _check_top_level(coco, fail)
    joints_of = _check_categories(coco["categories"], kset, fail)
    image_ids = _check_images(coco["images"], fail)
    first_use: dict = {}  # annotation id -> its first position
    out_anns = [
        _check_annotation(i, ann, joints_of, image_ids, first_use, kset, fail, source, num_keypoints_mismatch)
        for i, ann in enumerate(coco["annotations"])
    ]
    return {**coco, "annotations": out_anns}


def _check_top_level(coco, fail) -> None:
    if not isinstance(coco, dict):
        hint = (
            " (a results file is a list of detections; load it with pycocotools' loadRes)"
            if isinstance(coco, list)
            else ""
        )
        fail(f"top level must be a JSON object with keys {list(TOP_LEVEL)}, found {type(coco).__name__}{hint}")
    missing = [k for k in TOP_LEVEL if k not in coco]
    if missing:
        fail(f"missing top-level key(s) {missing}; a person_keypoints file needs {list(TOP_LEVEL)}")
    for key in TOP_LEVEL:
        if not isinstance(coco[key], list):
            fail(f"top-level {key!r} must be a list, found {type(coco[key]).__name__}")


def _check_categories(categories: list, kset: KeypointSet, fail) -> dict:
    """{category id: number of keypoints J it defines}."""
    joints_of: dict = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or not _is_id(cat.get("id")):
            fail(f"categories[{i}] must be an object with an integer 'id', found {cat!r:.80}")
        if cat["id"] in joints_of:
            fail(f"duplicate category id={cat['id']!r} (categories[{i}])")
        names = cat.get("keypoints")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            fail(f"category id={cat['id']!r}: 'keypoints' must be a list of names, found {names!r:.80}")
        joints_of[cat["id"]] = len(names) if names else kset.num_joints
    return joints_of


def _check_images(images: list, fail) -> set:
    """The set of image ids (unique, with positive sizes where given)."""
    image_ids: set = set()
    for i, img in enumerate(images):
        if not isinstance(img, dict) or not _is_id(img.get("id")):
            fail(f"images[{i}] must be an object with an integer 'id', found {img!r:.80}")
        if img["id"] in image_ids:
            fail(f"duplicate image id={img['id']!r} (images[{i}])")
        image_ids.add(img["id"])
        for key in ("width", "height"):
            if key in img and not (_is_number(img[key]) and img[key] > 0):
                fail(f"image id={img['id']!r}: {key!r} must be a positive number, found {img[key]!r}")
    return image_ids


def _check_annotation(i, ann, joints_of, image_ids, first_use, kset, fail, source, mismatch) -> dict:
    """One annotation checked against the categories and images; returns it with defaults filled in."""
    if not isinstance(ann, dict):
        fail(f"annotations[{i}] must be an object, found {type(ann).__name__}")
    aid = ann.get("id")
    where = f"annotation id={aid!r} (annotations[{i}])"

    def bad(msg: str):
        fail(f"{where}: {msg}")

    absent = [k for k in REQUIRED_FIELDS if k not in ann]
    if absent:
        bad(f"missing required field(s) {absent} (required: {list(REQUIRED_FIELDS)}; defaulted: "
            f"{sorted(DEFAULTED_FIELDS)})")  # fmt: skip
    if not _is_id(aid):
        bad(f"'id' must be an integer, found {aid!r}")
    if aid in first_use:
        bad(f"duplicate annotation id (first used by annotations[{first_use[aid]}])")
    first_use[aid] = i
    if ann["image_id"] not in image_ids:
        bad(f"image_id={ann['image_id']!r} is not in 'images'")
    if ann["category_id"] not in joints_of:
        bad(f"category_id={ann['category_id']!r} is not in 'categories' (ids {sorted(joints_of, key=str)})")
    try:
        kp = _numbers(ann["keypoints"], "keypoints")
        box = _numbers(ann["bbox"], "bbox")
        area = _numbers([ann["area"]], "area")[0]
    except ValueError as e:
        bad(str(e))
    num_j = joints_of[ann["category_id"]]
    if kp.size != 3 * num_j:
        bad(f"keypoints must have 3*J = {3 * num_j} values (J = {num_j} keypoints), found {kp.size}")
    if box.size != 4:
        bad(f"bbox must be [x, y, w, h] (4 values), found {box.size}")
    if box[2] < 0 or box[3] < 0:
        bad(f"bbox has negative size w={box[2]:g}, h={box[3]:g}")
    if area < 0:
        bad(f"area is negative ({area:g})")
    iscrowd = ann.get("iscrowd", 0)
    if iscrowd not in (0, 1) or isinstance(iscrowd, float):
        bad(f"iscrowd must be 0 or 1, found {iscrowd!r}")
    v = kp[2::3]
    is_result = "score" in ann
    if is_result:
        if not (_is_number(ann["score"]) and math.isfinite(ann["score"])):
            bad(f"score must be a finite number, found {ann['score']!r}")
    elif not ((v == 0) | (v == 1) | (v == 2)).all():
        j = int(np.flatnonzero(~np.isin(v, (0, 1, 2)))[0])
        name = kset.names[j] if num_j == kset.num_joints else f"#{j}"
        bad(f"visibility of keypoint {j} ({name}) must be 0, 1 or 2, found {v[j]:g}")
    new = ann if "iscrowd" in ann else {**ann, "iscrowd": 0}
    if not is_result:
        count = int(np.count_nonzero(v > 0))
        if "num_keypoints" not in ann:
            new = {**new, "num_keypoints": count}
        elif ann["num_keypoints"] != count:
            msg = f"num_keypoints={ann['num_keypoints']!r} but {count} keypoints have v > 0"
            if mismatch == "error":
                bad(msg + " (load with num_keypoints_mismatch='warn' or 'fix' to accept)")
            warnings.warn(f"{source}: {where}: {msg}", CocoFormatWarning, stacklevel=4)
            if mismatch == "fix":
                new = {**new, "num_keypoints": count}
    return new


def save_coco(coco: dict, path, kset: KeypointSet = COCO) -> dict:
    """Validate `coco` (defaults filled in) and write it to `path` atomically; returns the written dict."""
    checked = validate_coco(coco, kset, source=f"save_coco({os.fspath(path)})")
    atomic_write_json(path, checked, indent=None, separators=(",", ":"))
    return checked


def person_category(kset: KeypointSet = COCO, category_id: int = 1, name: str = "person") -> dict:
    """The COCO category of a keypoint set: names and the skeleton 1-based, as COCO's JSON stores it.

    Used in chapter 1."""
    return {
        "id": category_id,
        "name": name,
        "supercategory": name,
        "keypoints": list(kset.names),
        "skeleton": [[i + 1, j + 1] for i, j in kset.links],
    }


def _plain(x):
    """JSON-ready Python numbers from numpy scalars (ints stay ints)."""
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


def bbox_from_keypoints(kpts) -> np.ndarray:
    """Tight [x, y, w, h] box around the labelled (v > 0) keypoints of one person (J, 3); zeros if none."""
    kpts = np.asarray(kpts, dtype=float)
    lab = kpts[:, 2] > 0
    if not lab.any():
        return np.zeros(4)
    lo, hi = kpts[lab, :2].min(0), kpts[lab, :2].max(0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def annotation(image_id, keypoints, *, ann_id=1, bbox=None, area=None, iscrowd: int = 0, category_id: int = 1,
               decimals: int | None = None, **extra) -> dict:  # fmt: skip
    """One ground-truth annotation record from arrays.

    keypoints (J, 3) [x, y, v] or a flat list of 3J numbers; bbox [x, y, w, h] (default: the labelled keypoints'
    extent); area (default: w·h of the box); `decimals` rounds coordinates (e.g. 2 for 0.01 px); extra fields
    (e.g. ``head_box``) are added as given. ``num_keypoints`` is the count of v > 0; v is written as an int.
    """
    kp = np.asarray(keypoints, dtype=float).reshape(-1, 3)
    box = bbox_from_keypoints(kp) if bbox is None else np.asarray(bbox, dtype=float).reshape(4)
    num = (lambda x: round(float(x), decimals)) if decimals is not None else float
    rec = {
        "id": _plain(ann_id),
        "image_id": _plain(image_id),
        "category_id": _plain(category_id),
        "keypoints": [num(x) if i % 3 < 2 else int(x) for i, x in enumerate(kp.ravel())],
        "num_keypoints": int(np.count_nonzero(kp[:, 2] > 0)),
        "bbox": [num(x) for x in box],
        "area": float(box[2] * box[3] if area is None else area),
        "iscrowd": int(iscrowd),
    }
    for k, v in extra.items():
        rec[k] = [num(x) for x in np.asarray(v, dtype=float).ravel()] if isinstance(v, np.ndarray) else _plain(v)
    return rec


def make_coco(images, annotations, kset: KeypointSet = COCO, *, category_id: int = 1, info: dict | None = None):
    """Build a valid COCO keypoint dict from plain records. Used in chapter 7.

    Args:
      images: dicts with ``id`` and usually ``file_name``, ``width``, ``height``.
      annotations: dicts with ``image_id`` and ``keypoints`` as a (J, 3) array or a flat list of 3J numbers;
        optional ``bbox`` (default: the labelled keypoints' extent), ``area`` (default: w*h of the box),
        ``iscrowd`` (0), ``id`` (1, 2, ... in order), ``category_id`` (`category_id`), any extra fields.
    Returns the validated dict with ``num_keypoints`` counted and numpy numbers turned into JSON numbers.
    """
    anns = []
    for n, ann in enumerate(annotations):
        extra = {k: v for k, v in ann.items() if k not in ("id", "image_id", "keypoints", "bbox", "area", "iscrowd",
                                                            "category_id", "num_keypoints")}  # fmt: skip
        anns.append(annotation(ann["image_id"], ann["keypoints"], ann_id=ann.get("id", n + 1), bbox=ann.get("bbox"),
                               area=ann.get("area"), iscrowd=ann.get("iscrowd", 0),
                               category_id=ann.get("category_id", category_id), **extra))  # fmt: skip
    return validate_coco(dataset(images, anns, kset, category_id=category_id, info=info), kset, source="make_coco")


def dataset(images, annotations: list, kset: KeypointSet = COCO, *, category_id: int = 1, info=None) -> dict:
    """The top-level COCO dict: info, images (numpy numbers made plain), annotations, the person category."""
    return {
        "info": info or {"description": "made by posekit.cocoio"},
        "images": [{k: _plain(v) for k, v in img.items()} for img in images],
        "annotations": annotations,
        "categories": [person_category(kset, category_id)],
    }


def keypoint_results(image_ids, keypoints, scores, category_id: int = 1) -> list[dict]:
    """A COCO keypoint results list: [{"image_id", "category_id", "keypoints": [x, y, c] * J, "score"}, ...].

    image_ids (D,); keypoints (D, J, 2) (each keypoint's confidence c is written as 1; COCOeval ignores it)
    or (D, J, 3); scores (D,) the detections' confidences. Used in chapters 3 and 7.
    """
    kp = np.asarray(keypoints, dtype=float)
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints: expected shape (D, J, 2) or (D, J, 3), found {kp.shape}")
    if kp.shape[-1] == 2:
        kp = np.concatenate([kp, np.ones(kp.shape[:2] + (1,))], -1)
    ids, sc = _per_detection(image_ids, scores, len(kp))
    flat = kp.reshape(len(kp), -1).tolist()
    return [{"image_id": i, "category_id": category_id, "keypoints": k, "score": s} for i, k, s in zip(ids, flat, sc)]


def box_results(image_ids, boxes, scores, category_id: int = 1) -> list[dict]:
    """A COCO box results list: [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...].

    image_ids (D,), boxes (D, 4) [x, y, w, h], scores (D,).
    """
    b = np.asarray(boxes, dtype=float)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (D, 4) [x, y, w, h], found {b.shape}")
    ids, sc = _per_detection(image_ids, scores, len(b))
    return [{"image_id": i, "category_id": category_id, "bbox": x, "score": s} for i, x, s in zip(ids, b.tolist(), sc)]


def _per_detection(image_ids, scores, n: int):
    ids = [_plain(i) for i in np.asarray(image_ids).reshape(-1).tolist()]
    sc = np.asarray(scores, dtype=float).reshape(-1)
    if len(ids) != n or len(sc) != n:
        raise ValueError(f"image_ids and scores: expected one per detection ({n}), found {len(ids)} and {len(sc)}")
    return ids, sc.tolist()


def annotations_by_image(coco: dict) -> dict:
    """Annotations grouped by image id, in file order; every image gets a (possibly empty) list.

    Used in chapter 1.
    """
    out = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        out.setdefault(ann["image_id"], []).append(ann)
    return out


def resample_images(coco: dict, image_ids, *results) -> tuple:
    """A bootstrap sample: the ground truth and results lists over `image_ids`, images drawn with replacement.

    The k-th drawn image becomes image id k + 1, and its annotations and detections are copied under that id
    (annotation ids renumbered 1, 2, ...), so an image drawn twice counts twice in an evaluation, as two images.
    Returns (coco, results_1, results_2, ...): one resampled list per results list given. Used by
    `posekit.metrics.bootstrap`.
    """
    by_image = annotations_by_image(coco)
    images = {img["id"]: img for img in coco["images"]}
    drawn = [_plain(i) for i in np.asarray(image_ids).reshape(-1).tolist()]
    unknown = sorted({i for i in drawn if i not in images}, key=str)
    if unknown:
        raise ValueError(f"image_ids: expected ids of the ground truth's images, found {len(unknown)} that are not "
                         f"(first: {unknown[0]!r})")  # fmt: skip
    dets = []
    for r in results:
        grouped: dict = {}
        for d in r:
            grouped.setdefault(d["image_id"], []).append(d)
        dets.append(grouped)
    out_images, out_anns, out_dets = [], [], [[] for _ in results]
    for k, i in enumerate(drawn, start=1):
        out_images.append({**images[i], "id": k})
        out_anns += [{**a, "id": len(out_anns) + n + 1, "image_id": k} for n, a in enumerate(by_image[i])]
        for out, grouped in zip(out_dets, dets):
            out += [{**d, "image_id": k} for d in grouped.get(i, ())]
    return ({**coco, "images": out_images, "annotations": out_anns}, *out_dets)


def annotation_arrays(coco: dict, image_id=None, *, include_crowd: bool = True) -> dict:
    """The annotations (of one image, or all) as arrays.

    Returns dict(keypoints (P, J, 3), bboxes (P, 4) xywh, areas (P,), iscrowd (P,) int, num_keypoints (P,) int,
    image_ids (P,) object, ids (P,) object). All annotations must share one J.

    Used in chapter 1.
    """
    anns = coco["annotations"] if image_id is None else annotations_by_image(coco).get(image_id, [])
    if not include_crowd:
        anns = [a for a in anns if not a.get("iscrowd", 0)]
    lengths = {len(a["keypoints"]) for a in anns}
    if len(lengths) > 1:
        raise ValueError(f"annotation_arrays: annotations mix keypoint counts {sorted(n // 3 for n in lengths)}")
    num_j = lengths.pop() // 3 if lengths else COCO.num_joints
    kp = np.array([a["keypoints"] for a in anns], dtype=float).reshape(len(anns), num_j, 3)
    return {
        "keypoints": kp,
        "bboxes": np.array([a["bbox"] for a in anns], dtype=float).reshape(len(anns), 4),
        "areas": np.array([a["area"] for a in anns], dtype=float),
        "iscrowd": np.array([a.get("iscrowd", 0) for a in anns], dtype=int),
        "num_keypoints": np.array([np.count_nonzero(k[:, 2] > 0) for k in kp], dtype=int),
        "image_ids": np.array([a["image_id"] for a in anns], dtype=object),
        "ids": np.array([a["id"] for a in anns], dtype=object),
    }


def keypoints_array(coco: dict, image_id=None) -> np.ndarray:
    """Keypoints of one image's people (or all people) as a (P, J, 3) float array [x, y, v].

    Used in chapter 1.
    """
    return annotation_arrays(coco, image_id)["keypoints"]


def format_annotation(ann: dict, kset: KeypointSet | None = COCO) -> str:
    """Pretty JSON of one annotation with its keypoints one [x, y, v] triple per line (named when `kset` fits).

    Used in chapter 1.
    """
    rest = {k: v for k, v in ann.items() if k not in ("keypoints", "segmentation")}
    lines = ["{"]
    for k, v in rest.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    if "segmentation" in ann:
        lines.append('  "segmentation": ...,')
    kp = ann["keypoints"]
    num_j = len(kp) // 3
    lines.append('  "keypoints": [')
    cols = [[json.dumps(x) for x in kp[c::3]] for c in range(3)]
    widths = [max(map(len, col), default=0) for col in cols]
    for j in range(num_j):
        comma = "," if j < num_j - 1 else " "
        triple = ", ".join(col[j].rjust(w) for col, w in zip(cols, widths)) + comma
        name = f"  # {j:2d} {kset.names[j]}" if kset is not None and kset.num_joints == num_j else ""
        lines.append(f"    {triple}{name}".rstrip())
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines)


def load_images(coco: dict, image_dir, ids=None) -> list[np.ndarray]:
    """Read the images with the given ids (default: all, in file order) as (H, W, 3) uint8 RGB arrays.

    Raises FileNotFoundError naming the image id and the missing path, and ValueError for an unknown id.

    Used in chapter 1.
    """
    from PIL import Image

    by_id = {img["id"]: img for img in coco["images"]}
    ids = list(by_id) if ids is None else list(ids)
    image_dir = Path(image_dir)
    out = []
    for iid in ids:
        if iid not in by_id:
            raise ValueError(f"load_images: image id={iid!r} is not in the annotation file's 'images'")
        img = by_id[iid]
        if "file_name" not in img:
            raise CocoFormatError(f"load_images: image id={iid!r} has no 'file_name'")
        path = image_dir / img["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"load_images: image id={iid!r}: file {path} not found (image_dir={image_dir})")
        with Image.open(path) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out
