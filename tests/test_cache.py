"""The pre-decoded image cache and the batched augmentation: same model inputs as the per-sample path,
built once, rebuilt when the source changes or the file is damaged, never trusted half-built."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from formats import write_chalearn_imagefolder, write_image
from mtl_cluster.config import TrainConfig, signature, train_config_from_dict
from mtl_cluster.errors import CheckpointError, ConfigError, DataError
from mtl_cluster.train.checkpoint import CheckpointWriter
from mtl_cluster.train.data.base import ArrayImages, FileImages
from mtl_cluster.train.data.cache import open_cache
from mtl_cluster.train.data.transforms import (CachedView, TaskView, _crop_cpu, _crop_gather, augment_batch,
                                               decode)
from mtl_cluster.train.loop import run_training


class CountingFiles(FileImages):
    """FileImages that counts decodes, to prove a reused cache decodes nothing."""

    decodes = 0

    def image(self, i: int):
        CountingFiles.decodes += 1
        return super().image(i)


def _files(folder: Path, n: int = 6, corrupt: int | None = None) -> CountingFiles:
    paths = [write_image(folder / f"{i:03d}.jpg", seed=i, size=20 + i) for i in range(n)]
    if corrupt is not None:
        paths[corrupt].write_bytes(b"\xff\xd8 not a jpeg")
    return CountingFiles(paths, list(range(n)))


@pytest.mark.parametrize("size", [63, 64, 100])
def test_batched_augmentation_is_bit_identical_to_the_per_sample_path(size: int) -> None:
    rng = np.random.default_rng(size)
    pixels = rng.integers(0, 256, (40, size, size, 3), dtype=np.uint8)
    view = TaskView(ArrayImages(pixels, np.zeros(40)), size)
    seeds = [int(s) for s in rng.integers(0, 2**62, 39)] + [-1]
    per_sample = torch.stack([view[(i, s)][0] for i, s in enumerate(seeds)])
    planar = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))   # the cache's layout
    assert torch.equal(augment_batch(torch.from_numpy(planar), seeds), per_sample)
    assert torch.equal(_crop_gather(torch.from_numpy(planar), seeds), _crop_cpu(torch.from_numpy(planar), seeds))
    batch = CachedView(planar, np.ones(40, bool), np.arange(40.0), augment_here=True).__getitems__(
        list(enumerate(seeds)))
    assert torch.equal(batch[0], per_sample)


def test_cache_is_built_once_then_reused_without_decoding(tmp_path: Path) -> None:
    images = _files(tmp_path / "img", corrupt=2)
    reports: list[tuple[int, int]] = []
    first = open_cache(images, 32, tmp_path / "cache", lambda d, t: reports.append((d, t)))
    assert first.built and reports[-1] == (6, 6)
    assert first.ok.tolist() == [True, True, False, True, True, True]
    for i in (0, 1, 3, 5):
        assert np.array_equal(first.pixels[i], decode(images, i, 32).transpose(2, 0, 1))
    CountingFiles.decodes = 0
    again = open_cache(images, 32, tmp_path / "cache")
    assert not again.built and CountingFiles.decodes == 0 and again.key == first.key
    assert np.array_equal(np.asarray(again.pixels), np.asarray(first.pixels))
    assert again.ok.tolist() == first.ok.tolist()
    other_size = open_cache(images, 40, tmp_path / "cache")
    assert other_size.built and other_size.key != first.key


def test_cache_is_rebuilt_when_a_source_file_changes(tmp_path: Path) -> None:
    images = _files(tmp_path / "img")
    first = open_cache(images, 32, tmp_path / "cache")
    write_image(images.paths[3], seed=99, size=31)
    os.utime(images.paths[3], ns=(1, 1))   # other content and size (the key hashes those; the mtime no longer counts)
    second = open_cache(images, 32, tmp_path / "cache")
    assert second.built and second.key != first.key
    assert np.array_equal(second.pixels[3], decode(images, 3, 32).transpose(2, 0, 1))


def test_truncated_or_half_built_cache_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    images = _files(tmp_path / "img")
    first = open_cache(images, 32, tmp_path / "cache")
    npy = tmp_path / "cache" / f"{first.key}.npy"
    expected = np.asarray(first.pixels).copy()
    del first
    npy.write_bytes(npy.read_bytes()[:1000])            # truncated on disk
    again = open_cache(images, 32, tmp_path / "cache")
    assert again.built and np.array_equal(np.asarray(again.pixels), expected)
    (tmp_path / "cache" / f"{again.key}.json").unlink()  # pixels without the meta: a build that never finished
    assert open_cache(images, 32, tmp_path / "cache").built


def test_in_memory_arrays_at_the_training_size_are_used_as_they_are() -> None:
    pixels = np.zeros((3, 64, 64, 3), np.uint8)
    pixels[1, 5, 7] = (1, 2, 3)
    dec = open_cache(ArrayImages(pixels, [0, 1, 2]), 64, Path("/nonexistent"))
    assert dec.key == "in-memory" and dec.ok.all() and dec.pixels[1, :, 5, 7].tolist() == [1, 2, 3]


def _train(run: Path, data: Path, cache: str, *extra: str) -> dict:
    raw = {"dataset": "CVPR_16_ChaLearn", "loss_weights": [1, 0, 0, 0], "image_size": 64, "batch_size": 4,
           "epoch": 2, "steps_per_epoch": 3, "data_cache": cache,
           "data": {"root": str(data), "cache_dir": str(data / "cache")}}
    for kv in extra:
        k, v = kv.split("=")
        raw[k] = json.loads(v)
    return run_training(train_config_from_dict(raw), run, handle_signals=False)


def test_training_with_and_without_the_cache_gives_byte_identical_metrics(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_chalearn_imagefolder(data / "CVPR_GENDER_5_points", n_per_class=5)
    (data / "CVPR_GENDER_5_points" / "TRAIN" / "male" / "corrupt.jpg").write_bytes(b"\xff\xd8 not really")
    off = _train(tmp_path / "off", data, "off")
    on = _train(tmp_path / "on", data, "on")
    assert (tmp_path / "off" / "metrics.jsonl").read_bytes() == (tmp_path / "on" / "metrics.jsonl").read_bytes()
    assert on["unreadable_images"] == off["unreadable_images"] == {"gender": 1}
    perf = json.loads((tmp_path / "on" / "status.json").read_text())["perf"]
    assert perf["cache train:gender"].startswith("on, built") and perf["amp"] == "none"
    assert json.loads((tmp_path / "off" / "status.json").read_text())["perf"]["cache train:gender"] == "off"
    assert "corrupt.jpg" in (tmp_path / "on" / "log.txt").read_text()


def test_perf_switches_fall_back_on_cpu_and_only_amp_is_in_the_signature(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_chalearn_imagefolder(data / "CVPR_GENDER_5_points")
    _train(tmp_path / "run", data, "auto", 'amp="bf16"', "compile=true", "channels_last=false")
    perf = json.loads((tmp_path / "run" / "status.json").read_text())["perf"]
    assert perf["amp"] == "none (bf16 asked, no CUDA)" and perf["compile"] == "false (asked, no CUDA)"
    assert perf["cache train:gender"].startswith("on (auto), built")
    base = TrainConfig()
    assert signature(base) == signature(TrainConfig(data_cache="off", channels_last=False, compile=True))
    assert signature(base) != signature(TrainConfig(amp="bf16"))


def test_perf_config_keys_are_validated() -> None:
    with pytest.raises(ConfigError, match="data_cache: 'maybe'; valid: auto, on, off"):
        train_config_from_dict({"data_cache": "maybe"})
    with pytest.raises(ConfigError, match="amp: 'fp16'; valid: none, bf16"):
        train_config_from_dict({"amp": "fp16"})
    assert train_config_from_dict({"data_cache": False}).data_cache == "off"   # YAML 1.1 reads off as false


def test_a_failed_background_checkpoint_write_is_raised_by_wait(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    writer = CheckpointWriter(tmp_path / "file" / "checkpoints")
    writer.save({"epoch": 0, "step": 1, "model": {"w": torch.zeros(2)}})
    with pytest.raises(OSError):
        writer.wait()
    good = CheckpointWriter(tmp_path / "ok")
    state = {"epoch": 0, "step": 1, "model": {"w": torch.zeros(2)}}
    good.save(state)
    state["model"]["w"] += 1      # training goes on; the checkpoint holds the state at save time
    good.wait()
    saved = torch.load(tmp_path / "ok" / "ckpt-e0000-s000001.pt", weights_only=True)
    assert saved["model"]["w"].tolist() == [0.0, 0.0]


def test_an_unwritable_cache_folder_falls_back_under_auto_and_is_one_error_under_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_chalearn_imagefolder(data / "CVPR_GENDER_5_points")
    (data / "cache").write_text("a file where the cache folder should be")
    _train(tmp_path / "auto", data, "auto")
    perf = json.loads((tmp_path / "auto" / "status.json").read_text())["perf"]
    assert perf["cache train:gender"].startswith("off (auto: cannot write")
    with pytest.raises(DataError, match="data_cache: on, but the image cache in .* cannot be written"):
        _train(tmp_path / "on", data, "on")


def test_resuming_on_changed_data_is_refused_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_chalearn_imagefolder(data / "CVPR_GENDER_5_points")
    _train(tmp_path / "run", data, "on")
    (tmp_path / "run" / "summary.json").unlink()     # as if it had stopped after its last checkpoint
    write_image(data / "CVPR_GENDER_5_points" / "TRAIN" / "male" / "new.jpg", seed=5)
    with pytest.raises(CheckpointError, match=r"trained on other data \(train:gender changed") as err:
        _train(tmp_path / "run", data, "on")
    assert "\n" not in str(err.value)


def test_two_builders_of_the_same_cache_at_once_both_get_a_whole_identical_cache(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor
    images = _files(tmp_path / "img", n=12)
    with ThreadPoolExecutor(2) as pool:   # two array tasks starting on the same data
        a, b = pool.map(lambda _: open_cache(images, 32, tmp_path / "cache", threads=1), range(2))
    assert a.key == b.key and np.array_equal(np.asarray(a.pixels), np.asarray(b.pixels))
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [f"{a.key}.json", f"{a.key}.npy"]
    assert not open_cache(images, 32, tmp_path / "cache").built
