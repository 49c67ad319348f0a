"""Data shards: each host reads only its part of the training set (`posekit.data.Shards`, `read_shards`).

A shard renders the same bytes as those items of the whole set, and a batch stream builds each shard's block of
the global batch from that shard alone, so a host holding one shard produces exactly its block of the batch that
one process holding every shard produces. (Two real processes: tests/test_parallel.py.)
"""

import numpy as np
import pytest

from posekit import parallel, scenes
from posekit.data import Shards, flip_batches, read_shards, shards_config, synthetic_single


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path))


@pytest.mark.parametrize("size", [64, (64, 48)])
def test_crop_shards_are_the_whole_sets_crops(size):
    whole = synthetic_single(20, 3, size)
    parts = [synthetic_single(20, 3, size, shard=(s, 3)) for s in range(3)]
    assert [len(p["images"]) for p in parts] == [6, 7, 7]  # parallel.shard_range: contiguous, ±1 in size
    for k, v in whole.items():
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), v, err_msg=k)


def test_scene_shards_are_the_whole_sets_scenes_with_their_image_ids():
    whole = scenes.training_scenes(10, 1)
    parts = [scenes.training_scenes(10, 1, shard=(s, 2)) for s in range(2)]
    np.testing.assert_array_equal(np.concatenate([p["images"] for p in parts]), whole["images"])
    assert sum((p["image_ids"] for p in parts), []) == whole["image_ids"]
    assert sum((p["coco"]["images"] for p in parts), []) == whole["coco"]["images"]

    def labels(anns):  # the annotations without their ids (numbered within each shard)
        return [{k: v for k, v in a.items() if k != "id"} for a in anns]

    assert sum((labels(p["coco"]["annotations"]) for p in parts), []) == labels(whole["coco"]["annotations"])
    assert parts[1]["coco"]["images"][0]["file_name"] == whole["coco"]["images"][5]["file_name"]


def test_a_coco_folder_shard_reads_only_its_images(tmp_path):
    from tests.test_real_coco_path import write_small_coco

    ann, folder = write_small_coco(tmp_path / "coco")
    whole = scenes.load_folder(ann, folder)
    parts = [scenes.load_folder(ann, folder, shard=(s, 2)) for s in range(2)]
    assert [p["image_ids"] for p in parts] == [whole["image_ids"][:2], whole["image_ids"][2:]]
    for mine, theirs in zip(parts[0]["images"] + parts[1]["images"], whole["images"], strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for p in parts:
        assert {a["image_id"] for a in p["coco"]["annotations"]} <= set(p["image_ids"])
    assert sum(len(p["coco"]["annotations"]) for p in parts) == len(whole["coco"]["annotations"])
    # an image not read cannot be missed: a shard does not open the other shard's files
    (folder / whole["coco"]["images"][0]["file_name"]).unlink()
    assert scenes.load_folder(ann, folder, shard=(1, 2))["image_ids"] == whole["image_ids"][2:]


STREAMS = {
    "flip": (lambda n: synthetic_single(n, 0, 64, shard=None), lambda d: flip_batches(d, 8, 5)),
    "crop": (lambda n: scenes.training_scenes(n, 0), lambda d: scenes.crop_batches(d, (64, 48), 8, 5)),
    "detector": (lambda n: scenes.training_scenes(n, 0), lambda d: scenes.detector_batches(d, 64, 4, 5)),
    "bottomup": (lambda n: scenes.training_scenes(n, 0), lambda d: scenes.bottomup_batches(d, 64, 4, 5)),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_a_host_builds_its_block_of_the_batch_from_its_shard_alone(name):
    load, stream = STREAMS[name]
    whole = load(24)
    if name == "flip":
        halves = [{k: v[rows] for k, v in whole.items()} for rows in (slice(0, 12), slice(12, 24))]
    else:
        halves = [scenes.select(whole, range(0, 12)), scenes.select(whole, range(12, 24))]
    both = stream(Shards(2, {0: halves[0], 1: halves[1]}))
    second = stream(Shards(2, {1: halves[1]}))  # what host 1 of 2 holds and builds
    for step in (0, 3):
        full, mine = both(step), second(step)
        for k, v in full.items():
            half = len(v) // 2
            np.testing.assert_array_equal(mine[k], v[half:], err_msg=f"{k} at step {step}")
        half = len(full["images"]) // 2
        assert not np.array_equal(full["images"][:half], full["images"][half:])  # two blocks, two draws
    # sharded batches are other batches than unsharded ones, and still a pure function of the step
    assert not np.array_equal(both(0)["images"], stream(whole)(0)["images"])
    np.testing.assert_array_equal(both(1)["images"], both(1)["images"])


@pytest.mark.parametrize("name", list(STREAMS))
def test_unsharded_each_process_builds_its_rows_of_one_global_batch(name, monkeypatch):
    """Without shards every host holds the whole set, draws the global batch and builds its rows of it."""
    import jax

    load, stream = STREAMS[name]
    whole = load(24)
    full = stream(whole)(2)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    mine = stream(whole)(2)  # what process 1 of 2 builds
    for k, v in full.items():
        np.testing.assert_array_equal(mine[k], v[len(v) // 2 :], err_msg=k)


def test_read_shards_reads_this_process_shards_only():
    data = read_shards(lambda shard: synthetic_single(12, 0, 64, shard=shard), 3)
    assert data.num_shards == 3 and sorted(data.parts) == [0, 1, 2]  # one process reads every shard
    assert parallel.host_shards(4) == [0, 1, 2, 3]


def test_shard_errors_name_the_problem():
    crops = synthetic_single(8, 0, 64)
    with pytest.raises(ValueError, match="global batch of 6 does not split evenly over 4 data shards"):
        flip_batches(Shards(4, {0: crops}), 6, 0)
    with pytest.raises(ValueError, match="3 items cannot be split into 4"):
        parallel.shard_range(3, 0, 4)
    with pytest.raises(ValueError, match="0 <= shard < 2"):
        parallel.shard_range(10, 2, 2)
    with pytest.raises(ValueError, match="data_shards: expected a positive integer, got 0"):
        shards_config(0)
    assert shards_config(1) == {} and shards_config(2) == {"data_shards": 2}


def test_held_out_crops_need_the_whole_training_set():
    from posekit.experiments import train_named

    with pytest.raises(ValueError, match="holdout needs the whole training set"):
        train_named("heatmap", steps=1, train_size=16, holdout=4, data_shards=2, progress=False)
