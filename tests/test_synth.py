"""Tests of the synthetic TuSimple-format data set writer (lanemodel.workload.synth)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lanemodel.workload import synth
from lanemodel.workload.synth import (
    H_SAMPLES,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    JPEG_QUALITY,
    render_scene,
    sample_scene,
    synth_frame,
)
from lanemodel.workload.synthset import write_synthetic_dataset
from lanemodel.workload.tusimple import read_label_file


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("synth")
    return root, write_synthetic_dataset(root, frames=6, seed=3, test_frames=3)


def test_constants():
    assert IMAGE_WIDTH == 1280 and IMAGE_HEIGHT == 720
    assert len(H_SAMPLES) == 56
    assert H_SAMPLES[0] == 160 and H_SAMPLES[-1] == 710
    assert all(b - a == 10 for a, b in zip(H_SAMPLES, H_SAMPLES[1:]))


def test_returned_paths_and_layout(dataset):
    root, paths = dataset
    assert set(paths) == {"train", "test"}
    assert paths["train"] == root / "label_data.json"
    assert paths["test"] == root / "test_label.json"
    train, test = _lines(paths["train"]), _lines(paths["test"])
    assert len(train) == 6 and len(test) == 3
    assert [o["raw_file"] for o in train] == [f"clips/synth/{i:05d}/20.jpg" for i in range(6)]
    assert [o["raw_file"] for o in test] == [f"clips/synth_test/{i:05d}/20.jpg" for i in range(3)]
    for obj in train + test:
        assert (root / obj["raw_file"]).is_file()


def test_no_test_file_without_test_frames(tmp_path):
    paths = write_synthetic_dataset(tmp_path, frames=1, seed=0)
    assert set(paths) == {"train"}
    assert not (tmp_path / "test_label.json").exists()
    assert not (tmp_path / "clips" / "synth_test").exists()


def test_label_format(dataset):
    root, paths = dataset
    for label_file in (paths["train"], paths["test"]):
        text = label_file.read_text(encoding="utf-8")
        assert text.endswith("\n")
        for line in text.splitlines():
            obj = json.loads(line)
            # Same keys, in the same order, as the real TuSimple files.
            assert list(obj) == ["lanes", "h_samples", "raw_file"]
            assert obj["h_samples"] == list(range(160, 711, 10))
            assert re.fullmatch(r"clips/synth(_test)?/\d{5}/20\.jpg", obj["raw_file"])
            lanes = obj["lanes"]
            assert 2 <= len(lanes) <= 4
            for lane in lanes:
                assert len(lane) == 56
                for x in lane:
                    assert type(x) is int
                    assert x == -2 or 0 <= x <= 1279
                defined = [i for i, x in enumerate(lane) if x != -2]
                assert len(defined) >= 2
                # One contiguous run of points, as in TuSimple (gaps of dashed
                # lines are labelled too).
                assert defined == list(range(defined[0], defined[-1] + 1))
            for left, right in zip(lanes, lanes[1:]):
                both = [(a, b) for a, b in zip(left, right) if a != -2 and b != -2]
                assert all(a < b for a, b in both)


def test_read_by_tusimple_reader(dataset):
    root, paths = dataset
    for key, count in (("train", 6), ("test", 3)):
        labels = read_label_file(paths[key])
        assert len(labels) == count
        for label, obj in zip(labels, _lines(paths[key])):
            assert label.raw_file == obj["raw_file"]
            assert label.h_samples == H_SAMPLES
            assert [list(lane) for lane in label.lanes] == obj["lanes"]


def test_images_are_720p_rgb_jpeg(dataset):
    root, paths = dataset
    for obj in _lines(paths["train"]) + _lines(paths["test"]):
        with Image.open(root / obj["raw_file"]) as img:
            assert img.format == "JPEG"
            assert img.mode == "RGB"
            assert img.size == (1280, 720)


def test_same_seed_is_byte_identical_other_seed_differs(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a", frames=2, seed=11, test_frames=1)
    b = write_synthetic_dataset(tmp_path / "b", frames=2, seed=11, test_frames=1)
    c = write_synthetic_dataset(tmp_path / "c", frames=2, seed=12, test_frames=1)
    files_a, files_b, files_c = (_all_files(tmp_path / n) for n in "abc")
    assert files_a == files_b
    assert set(files_a) == set(files_c)
    assert a["train"].read_bytes() != c["train"].read_bytes()
    assert a["test"].read_bytes() != c["test"].read_bytes()
    for name in files_a:
        if name.endswith(".jpg"):
            assert files_a[name] != files_c[name], name
    del b


def test_frames_do_not_depend_on_count(tmp_path):
    write_synthetic_dataset(tmp_path / "small", frames=1, seed=5)
    write_synthetic_dataset(tmp_path / "large", frames=2, seed=5)
    small = _lines(tmp_path / "small" / "label_data.json")
    large = _lines(tmp_path / "large" / "label_data.json")
    assert small == large[:1]
    name = "clips/synth/00000/20.jpg"
    assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "large" / name).read_bytes()


def test_test_split_distinct_from_train(dataset):
    root, paths = dataset
    train, test = _lines(paths["train"]), _lines(paths["test"])
    assert not {o["raw_file"] for o in train} & {o["raw_file"] for o in test}
    train_lanes = [o["lanes"] for o in train]
    for obj in test:
        assert obj["lanes"] not in train_lanes
    train_images = {(root / o["raw_file"]).read_bytes() for o in train}
    for obj in test:
        assert (root / obj["raw_file"]).read_bytes() not in train_images


def test_synth_frame_deterministic_and_consistent_with_scene():
    img1, lanes1 = synth_frame(np.random.default_rng(42))
    img2, lanes2 = synth_frame(np.random.default_rng(42))
    assert isinstance(img1, Image.Image)
    assert img1.size == (1280, 720) and img1.mode == "RGB"
    assert lanes1 == lanes2
    assert np.array_equal(np.asarray(img1), np.asarray(img2))
    assert sample_scene(np.random.default_rng(42)).labels() == lanes1
    _, lanes3 = synth_frame(np.random.default_rng(43))
    assert lanes3 != lanes1


def test_synth_frame_rejects_non_generator():
    with pytest.raises(TypeError, match="rng"):
        synth_frame(42)  # type: ignore[arg-type]


def test_scene_variety():
    scenes = [sample_scene(np.random.default_rng(i)) for i in range(300)]
    counts = [len(s.lanes) for s in scenes]
    assert set(counts) == {2, 3, 4}
    assert counts.count(4) > 0.5 * len(scenes)
    lanes = [lane for s in scenes for lane in s.lanes]
    assert any(lane.dashed for lane in lanes) and any(not lane.dashed for lane in lanes)
    yellow = [lane.color[2] < lane.color[0] - 80 for lane in lanes]
    assert 0 < sum(yellow) < len(lanes) // 2
    assert 0.2 < np.mean([s.curve != 0 for s in scenes]) < 0.8
    horizons = [s.horizon for s in scenes]
    assert 200 <= min(horizons) and max(horizons) <= 280 and max(horizons) - min(horizons) > 50
    vps = [s.vp_x for s in scenes]
    assert 540 <= min(vps) and max(vps) <= 740 and max(vps) - min(vps) > 100
    for s in scenes:
        # Sorted left to right, no label above the visible start.
        assert [lane.x_bottom for lane in s.lanes] == sorted(lane.x_bottom for lane in s.lanes)
        for lane, xs in zip(s.lanes, s.labels()):
            assert lane.start_y > s.horizon
            for y, x in zip(H_SAMPLES, xs):
                if y < lane.start_y:
                    assert x == -2


def _jpeg_roundtrip(img: Image.Image) -> np.ndarray:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_labels_match_painted_pixels():
    """Labelled points on painted rows are bright paint; dash gaps are road."""
    painted_hits = painted_total = gap_dark = gap_total = 0
    for seed in range(8):
        scene = sample_scene(np.random.default_rng(seed))
        rgb = _jpeg_roundtrip(render_scene(scene, np.random.default_rng(1000 + seed)))
        luma = _luma(rgb)
        for lane, xs in zip(scene.lanes, scene.labels()):
            for y, x in zip(H_SAMPLES, xs):
                if x == -2 or not (40 <= x <= 1279 - 40):
                    continue
                left, right = luma[y, x - 40], luma[y, x + 40]
                rows = (y - 3, y, y + 3)
                if all(lane.is_painted(r, scene) for r in rows):
                    # Brighter than both sides (one may be grass or another lane).
                    painted_total += 1
                    painted_hits += luma[y, x] > min(left, right) + 25
                elif not any(lane.is_painted(r, scene) for r in rows):
                    # A dash gap looks like the road beside it.
                    gap_total += 1
                    gap_dark += luma[y, x] < max(left, right) + 25
    assert painted_total > 200 and gap_total > 30
    assert painted_hits / painted_total > 0.9
    assert gap_dark / gap_total > 0.8


def test_written_labels_match_solid_frame_pixels(tmp_path):
    """Through the written files: a frame's solid lanes are bright at their labels."""
    seed = 0
    write_synthetic_dataset(tmp_path, frames=2, seed=seed)
    # Rebuild the scenes from the same per-frame streams the writer uses.
    train_seq = np.random.SeedSequence(seed).spawn(2)[0]
    checked = hits = 0
    for child, obj in zip(train_seq.spawn(2), _lines(tmp_path / "label_data.json")):
        scene = sample_scene(np.random.default_rng(child))
        assert scene.labels() == obj["lanes"]
        luma = _luma(np.asarray(Image.open(tmp_path / obj["raw_file"]).convert("RGB")))
        for lane, xs in zip(scene.lanes, obj["lanes"]):
            if lane.dashed:
                continue
            for y, x in zip(H_SAMPLES, xs):
                if x == -2 or not (40 <= x <= 1239) or y < lane.start_y + 5:
                    continue
                checked += 1
                hits += luma[y, x] > min(luma[y, x - 40], luma[y, x + 40]) + 25
    assert checked > 20
    assert hits / checked > 0.9


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"frames": 0}, r"frames.*0"),
        ({"frames": -3}, r"frames.*-3"),
        ({"frames": 2.5}, r"frames.*2\.5"),
        ({"frames": True}, r"frames.*True"),
        ({"test_frames": -1}, r"test_frames.*-1"),
        ({"seed": -1}, r"seed.*-1"),
    ],
)
def test_bad_counts_raise(tmp_path, kwargs, pattern):
    args = {"frames": 1, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        write_synthetic_dataset(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_out_dir_is_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ValueError, match=r"out_dir.*file\.txt"):
        write_synthetic_dataset(target, frames=1)
    assert target.read_text() == "x"


def test_out_dir_not_creatable(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ValueError, match=r"out_dir.*file\.txt"):
        write_synthetic_dataset(target / "sub", frames=1)


def test_module_exports():
    for name in ("H_SAMPLES", "IMAGE_WIDTH", "IMAGE_HEIGHT", "synth_frame"):
        assert name in synth.__all__
