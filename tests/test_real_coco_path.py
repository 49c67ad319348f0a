"""Chapter 1 reads a COCO keypoint file and image folder given as parameters (the real-COCO path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posekit import cocoio
from posekit.skeleton import COCO

CHAPTER = Path(__file__).resolve().parent.parent / "chapters" / "01_task_and_data.ipynb"


def write_small_coco(root: Path, seed: int = 3) -> tuple[Path, Path]:
    """A hand-made COCO-format dataset (not the generator's): 5 JPEG images in a folder, 8 people, 1 crowd."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image_dir = root / "val_images"
    image_dir.mkdir(parents=True)
    images, anns = [], []
    for n, num_people in enumerate((2, 1, 3, 0, 2)):
        iid = 1000 + 7 * n  # ids that are neither 0-based nor consecutive, as in real COCO
        w, h = 160 + 16 * n, 120
        canvas = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(canvas)
        for _ in range(num_people):
            scale = rng.uniform(20, 50)
            centre = rng.uniform([scale, scale], [w - scale, h - scale])
            kp = np.zeros((17, 3))
            kp[:, :2] = centre + rng.uniform(-scale, scale, (17, 2))
            kp[:, 2] = rng.choice([0, 1, 2], 17, p=[0.15, 0.25, 0.6])
            kp[kp[:, 2] == 0, :2] = 0
            for i, j in COCO.links:
                if kp[i, 2] and kp[j, 2]:
                    draw.line([tuple(kp[i, :2]), tuple(kp[j, :2])], fill=(255, 255, 255), width=2)
            box = cocoio.bbox_from_keypoints(kp)
            anns.append({"image_id": iid, "keypoints": kp.round(2), "bbox": box, "area": 0.6 * box[2] * box[3]})
        file_name = f"{iid:012d}.jpg"
        canvas.save(image_dir / file_name, quality=90)
        images.append({"id": iid, "file_name": file_name, "width": w, "height": h})
    anns.append({"image_id": 1007, "keypoints": np.zeros((17, 3)), "bbox": [5, 5, 30, 20], "area": 400, "iscrowd": 1})
    ann_path = root / "annotations" / "person_keypoints_tiny.json"
    cocoio.save_coco(cocoio.make_coco(images, anns), ann_path)
    return ann_path, image_dir


@pytest.mark.chapters
def test_chapter_1_describes_the_coco_file_it_is_given(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    ann_path, image_dir = write_small_coco(tmp_path / "coco")
    results = tmp_path / "results"
    monkeypatch.setenv("POSEKIT_RESULTS", str(results))  # the kernel inherits the environment
    papermill.execute_notebook(
        str(CHAPTER),
        str(tmp_path / "01_out.ipynb"),
        parameters=dict(PROFILE="quick", COCO_ANNOTATIONS=str(ann_path), COCO_IMAGES=str(image_dir)),
        cwd=str(CHAPTER.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    values = {
        k: v["value"] for k, v in json.loads((results / "01_task_and_data.quick.json").read_text())["values"].items()
    }
    coco = json.loads(ann_path.read_text())
    people = [a for a in coco["annotations"] if not a["iscrowd"]]
    assert values["ch01_source"] == "file"
    assert values["ch01_annotation_file"] == "person_keypoints_tiny.json"
    assert values["ch01_num_images"] == len(coco["images"]) == 5
    assert values["ch01_num_annotations"] == len(coco["annotations"]) == 9
    assert values["ch01_people_per_image"] == pytest.approx(len(people) / len(coco["images"]))
    vis = np.array([a["keypoints"][2::3] for a in people])
    assert values["ch01_frac_v1"] == pytest.approx((vis == 1).mean())
    # The task example: of the images with 2-3 people, the one with the most labelled keypoints.
    by_image = {img["id"]: [a for a in coco["annotations"] if a["image_id"] == img["id"]] for img in coco["images"]}
    ok = [img for img in coco["images"] if 2 <= len(by_image[img["id"]]) <= 3]
    task = max(ok, key=lambda img: sum(a["num_keypoints"] for a in by_image[img["id"]]))
    expected = (task["width"], task["height"], len(by_image[task["id"]]))
    assert (values["ch01_task_W"], values["ch01_task_H"], values["ch01_task_N"]) == expected
