# ruff: noqa: E501  (the expected error messages read best unbroken)
"""Tests of lanemodel.workload.tusimple: TuSimple label I/O and validation."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from pathlib import Path

import pytest
from shared_data import REAL_LABELS

from lanemodel.workload.tusimple import (
    LaneLabel,
    TuSimpleFormatError,
    find_label_files,
    image_path,
    parse_label_line,
    read_label_file,
    read_label_files,
)

H3 = [240, 250, 260]


def _line(raw_file="clips/a/1.jpg", lanes=None, h_samples=None, **extra) -> str:
    obj = {
        "lanes": [[-2, 10, 20], [5, 6, -2]] if lanes is None else lanes,
        "h_samples": list(H3) if h_samples is None else h_samples,
        "raw_file": raw_file,
    }
    obj.update(extra)
    return json.dumps(obj)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real_rows():
    assert REAL_LABELS.is_file(), f"real TuSimple labels not found at {REAL_LABELS} (shared/ beside the project)"
    with open(REAL_LABELS, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_real_label_file_parses(real_rows):
    labels = read_label_file(REAL_LABELS)
    assert len(labels) == 200 == len(real_rows)
    expected_h = tuple(range(240, 711, 10))
    assert len(expected_h) == 48
    for number, (label, row) in enumerate(zip(labels, real_rows), start=1):
        assert isinstance(label, LaneLabel)
        assert label.line == number
        assert label.source == str(REAL_LABELS)
        assert label.raw_file == row["raw_file"]
        assert label.h_samples == expected_h
        assert label.lanes == tuple(tuple(lane) for lane in row["lanes"])
        assert all(len(lane) == 48 for lane in label.lanes)
    assert labels[0].raw_file == "clips/0313-1/6040/20.jpg"
    assert len({label.raw_file for label in labels}) == 200


def test_real_label_file_all_missing_lanes(real_rows):
    # Independent count straight from the JSON: lines holding a lane whose x are all -2.
    independent = sum(1 for row in real_rows if any(all(x == -2 for x in lane) for lane in row["lanes"]))
    assert independent == 35  # found by inspecting the file (one such lane on each of 35 lines)
    labels = read_label_file(REAL_LABELS)
    parsed = sum(1 for label in labels if any(all(x == -2 for x in lane) for lane in label.lanes))
    assert parsed == independent
    assert all(len(label.lanes) == 4 for label in labels)


def test_real_label_file_via_find_and_read_files(tmp_path, real_rows):
    # find_label_files works on a directory holding a copy-free symlink of the real file.
    link = tmp_path / "label_data_0313.json"
    link.symlink_to(REAL_LABELS)
    assert find_label_files(tmp_path) == [link]
    assert len(read_label_files(find_label_files(tmp_path))) == 200


# --------------------------------------------------------------------------- good input


def test_parse_good_line():
    label = parse_label_line(_line(), "f.json", 7)
    assert label == LaneLabel(
        raw_file="clips/a/1.jpg",
        lanes=((-2, 10, 20), (5, 6, -2)),
        h_samples=(240, 250, 260),
        source="f.json",
        line=7,
    )
    # frozen and hashable
    with pytest.raises(dataclasses.FrozenInstanceError):
        label.raw_file = "x"  # type: ignore[misc]
    assert hash(label) == hash(parse_label_line(_line(), "f.json", 7))


def test_integral_floats_accepted_and_extra_keys_ignored():
    label = parse_label_line(
        _line(lanes=[[-2.0, 10.0, 20]], h_samples=[240.0, 250, 260], extra="ok"), "f.json", 1
    )
    assert label.lanes == ((-2, 10, 20),)
    assert all(type(x) is int for x in label.lanes[0] + label.h_samples)


def test_empty_lanes_list_is_allowed():
    assert parse_label_line(_line(lanes=[]), "f.json", 1).lanes == ()


def test_read_skips_blank_lines_and_keeps_physical_line_numbers(tmp_path):
    path = tmp_path / "label_data_x.json"
    path.write_text("\n" + _line("a.jpg") + "\n   \n" + _line("b.jpg"), encoding="utf-8")  # no final newline
    labels = read_label_file(path)
    assert [(label.raw_file, label.line) for label in labels] == [("a.jpg", 2), ("b.jpg", 4)]


# --------------------------------------------------------------------------- bad input


BAD_LINES = [
    # (text, regex that must appear after "<file>:<line>: ")
    ('{"raw_file": "a.jpg", "lanes": [', r"not valid JSON"),
    ("[1, 2, 3]", r"not a JSON object, got array"),
    ('"just a string"', r"not a JSON object, got string"),
    (json.dumps({"raw_file": "a.jpg", "h_samples": H3}), r"missing key 'lanes'"),
    (json.dumps({"raw_file": "a.jpg", "lanes": []}), r"missing key 'h_samples'"),
    (json.dumps({"lanes": [], "h_samples": H3}), r"missing key 'raw_file'"),
    (_line(raw_file=""), r"raw_file must be a non-empty string"),
    (_line(raw_file=12), r"raw_file must be a non-empty string, got 12 \(integer\)"),
    (_line(raw_file="/abs/clips/1.jpg"), r"raw_file must be a relative path, got absolute path '/abs/clips/1.jpg'"),
    (_line(raw_file="C:\\clips\\1.jpg"), r"raw_file must be a relative path"),
    (_line(raw_file="clips/../../etc/passwd"), r"raw_file must not contain '\.\.'"),
    (_line(h_samples=[]), r"h_samples must be a non-empty list of integers"),
    (_line(h_samples="240"), r"h_samples must be a non-empty list of integers"),
    (_line(h_samples=[240, 250.5, 260]), r"h_samples must be a non-empty list of integers, h_samples\[1\] is 250.5"),
    (_line(h_samples=[240, True, 260]), r"h_samples must be a non-empty list of integers, h_samples\[1\] is true \(boolean\)"),
    (_line(h_samples=[240, 250, 250]), r"h_samples not strictly increasing: h_samples\[2\] = 250 follows h_samples\[1\] = 250"),
    (_line(h_samples=[250, 240, 260]), r"h_samples not strictly increasing"),
    (_line(h_samples=[-10, 250, 260]), r"h_samples\[0\] is -10, must be >= 0"),
    (_line(lanes={"0": [1, 2, 3]}), r"lanes must be a list of lists, got"),
    (_line(lanes=[[1, 2, 3], 5]), r"lanes must be a list of lists, lanes\[1\] is 5 \(integer\)"),
    (_line(lanes=[[1, 2, 3], [1, 2]]), r"lane 1 has 2 points but h_samples has 3"),
    (_line(lanes=[[1, 2, 3, 4]]), r"lane 0 has 4 points but h_samples has 3"),
    (_line(lanes=[[1, "2", 3]]), r"lane 0 point 1 \(y=250\) is not an integer: \"2\" \(string\)"),
    (_line(lanes=[[1, 2, 3], [True, 2, 3]]), r"lane 1 point 0 \(y=240\) is not an integer: true \(boolean\)"),
    (_line(lanes=[[1, 2.5, 3]]), r"lane 0 point 1 \(y=250\) is not an integer: 2.5 \(number\)"),
    (_line(lanes=[[1, None, 3]]), r"lane 0 point 1 \(y=250\) is not an integer: null"),
    (_line(lanes=[[1, 2, -1]]), r"lane 0 point 2 \(y=260\) has x=-1; only -2 \(no point\) or x >= 0 is allowed"),
    (_line(lanes=[[-3, 2, 3]]), r"lane 0 point 0 \(y=240\) has x=-3"),
]


@pytest.mark.parametrize("text, problem", BAD_LINES, ids=[f"bad{i}" for i in range(len(BAD_LINES))])
def test_parse_label_line_rejects(text, problem):
    with pytest.raises(TuSimpleFormatError, match=r"^labels/x\.json:17: " + problem) as info:
        parse_label_line(text, "labels/x.json", 17)
    assert info.value.source == "labels/x.json"
    assert info.value.line == 17
    assert isinstance(info.value, ValueError)


def test_bad_line_in_file_names_file_and_line(tmp_path):
    path = _write(tmp_path / "label_data_bad.json", [_line("a.jpg"), _line("b.jpg", lanes=[[1, 2]])])
    with pytest.raises(TuSimpleFormatError, match=re.escape(f"{path}:2: lane 0 has 2 points but h_samples has 3")):
        read_label_file(path)


def test_not_utf8_names_line(tmp_path):
    path = tmp_path / "label_data_bin.json"
    path.write_bytes(_line("a.jpg").encode() + b"\n\xff\xfe{}\n")
    with pytest.raises(TuSimpleFormatError, match=re.escape(f"{path}:2: not valid UTF-8")):
        read_label_file(path)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "label_data_empty.json"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(TuSimpleFormatError, match=re.escape(f"{path}: empty label file")):
        read_label_file(path)


def test_error_survives_pickling():
    with pytest.raises(TuSimpleFormatError) as info:
        parse_label_line("[]", "f.json", 3)
    clone = pickle.loads(pickle.dumps(info.value))
    assert str(clone) == str(info.value) and clone.line == 3 and clone.source == "f.json"


# --------------------------------------------------------------------------- duplicates


def test_duplicate_raw_file_within_one_file(tmp_path):
    path = _write(tmp_path / "label_data_a.json", [_line("a.jpg"), _line("b.jpg"), "", _line("a.jpg")])
    expected = f"{path}:4: duplicate raw_file 'a.jpg', first seen at {path}:1"
    with pytest.raises(TuSimpleFormatError, match=re.escape(expected)):
        read_label_file(path)
    with pytest.raises(TuSimpleFormatError, match=re.escape(expected)):
        read_label_files([path])


def test_duplicate_raw_file_across_files(tmp_path):
    first = _write(tmp_path / "label_data_a.json", [_line("a.jpg"), _line("b.jpg")])
    second = _write(tmp_path / "label_data_b.json", [_line("c.jpg"), _line("b.jpg")])
    with pytest.raises(
        TuSimpleFormatError, match=re.escape(f"{second}:2: duplicate raw_file 'b.jpg', first seen at {first}:2")
    ):
        read_label_files([first, second])


def test_read_label_files_concatenates_in_order(tmp_path):
    first = _write(tmp_path / "label_data_a.json", [_line("a.jpg"), _line("b.jpg")])
    second = _write(tmp_path / "test_label.json", [_line("c.jpg")])
    labels = read_label_files([second, first])
    assert [(label.raw_file, Path(label.source).name, label.line) for label in labels] == [
        ("c.jpg", "test_label.json", 1),
        ("a.jpg", "label_data_a.json", 1),
        ("b.jpg", "label_data_a.json", 2),
    ]


def test_read_label_files_empty_member_is_error(tmp_path):
    good = _write(tmp_path / "label_data_a.json", [_line("a.jpg")])
    empty = tmp_path / "label_data_b.json"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(TuSimpleFormatError, match=re.escape(f"{empty}: empty label file")):
        read_label_files([good, empty])


# --------------------------------------------------------------------------- find_label_files


def test_find_label_files_ordering_and_filtering(tmp_path):
    for name in [
        "test_label.json",
        "label_data_0601.json",
        "label_data_0313.json",
        "label_data_0531.json",
        "test_tasks_0627.json",  # submission template, not a label file
        "pred.json",
        "label_data_0313.json.bak",
        "notes.txt",
    ]:
        (tmp_path / name).write_text(_line() + "\n", encoding="utf-8")
    (tmp_path / "label_data_dir.json").mkdir()  # a directory is not a label file
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "label_data_nested.json").write_text(_line() + "\n", encoding="utf-8")
    found = find_label_files(tmp_path)
    assert found == [
        tmp_path / "label_data_0313.json",
        tmp_path / "label_data_0531.json",
        tmp_path / "label_data_0601.json",
        tmp_path / "test_label.json",
    ]
    assert all(isinstance(path, Path) for path in found)
    assert find_label_files(str(tmp_path)) == found


def test_find_label_files_none_names_root(tmp_path):
    (tmp_path / "pred.json").write_text("{}\n", encoding="utf-8")
    with pytest.raises(TuSimpleFormatError, match=re.escape(f"{tmp_path}: no TuSimple label files")):
        find_label_files(tmp_path)


def test_find_label_files_missing_root(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(TuSimpleFormatError, match=re.escape(f"{missing}: data set root is not a directory")):
        find_label_files(missing)


# --------------------------------------------------------------------------- image_path


def test_image_path_found(tmp_path):
    label = parse_label_line(_line("clips/0313-1/6040/20.jpg"), "label_data_x.json", 5)
    image = tmp_path / "clips" / "0313-1" / "6040" / "20.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\xff\xd8\xff")
    assert image_path(tmp_path, label) == image
    assert image_path(str(tmp_path), label) == image


def test_image_path_missing_names_label_file_line_and_image(tmp_path):
    label = parse_label_line(_line("clips/0313-1/6040/20.jpg"), "data/label_data_0313.json", 12)
    expected_image = tmp_path / "clips" / "0313-1" / "6040" / "20.jpg"
    with pytest.raises(
        TuSimpleFormatError,
        match=re.escape(f"data/label_data_0313.json:12: image not found: {expected_image}"),
    ) as info:
        image_path(tmp_path, label)
    assert info.value.line == 12
