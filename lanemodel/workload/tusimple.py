"""TuSimple lane label I/O with strict validation.

A TuSimple label file holds one JSON object per line::

    {"raw_file": "clips/0313-1/6040/20.jpg", "lanes": [[x, ...], ...], "h_samples": [y, ...]}

Every lane holds one x per entry of ``h_samples``; ``-2`` means "no point on this row".
The image of a label lives at ``<root>/<raw_file>``.

Validation rules (every error is a :class:`TuSimpleFormatError` whose message starts with
``"<file>:<line>: "`` and then says what is wrong):

* the line must be valid JSON (UTF-8) and hold a JSON object;
* the keys ``raw_file``, ``lanes`` and ``h_samples`` must be present (other keys are ignored);
* ``raw_file`` must be a non-empty, relative path without a ``..`` component;
* ``h_samples`` must be a non-empty list of integers >= 0, strictly increasing;
* ``lanes`` must be a list of lists (it may be empty), each as long as ``h_samples``;
* every x must be an integer and either ``-2`` (no point) or ``>= 0``; any other negative
  value is rejected because real TuSimple labels never hold one.

Integers: JSON booleans are never integers.  A JSON float with an integral value
(``632.0``) is accepted and stored as the int ``632``; a non-integral float (``632.5``),
NaN and infinities are rejected.  This applies to ``h_samples`` and to lane x values alike.

Blank (whitespace-only) lines are skipped; line numbers are 1-based physical line numbers
of the file, blank lines included.  A raw_file may appear only once in a label file and
only once across the files given to :func:`read_label_files`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

__all__ = [
    "TuSimpleFormatError",
    "LaneLabel",
    "NO_POINT",
    "parse_label_line",
    "read_label_file",
    "read_label_files",
    "find_label_files",
    "image_path",
]

#: The x value TuSimple uses for "this lane has no point on this row".
NO_POINT = -2

_REQUIRED_KEYS = ("raw_file", "lanes", "h_samples")


class TuSimpleFormatError(ValueError):
    """A TuSimple label file (or data set root) is malformed.

    The message names the file, the 1-based line number where there is one, and what is
    wrong, e.g. ``"labels.json:3: lane 2 has 47 points but h_samples has 48"``.  The
    attributes ``source`` and ``line`` hold the same file and line (``line`` is ``None``
    for errors about a whole file or directory).
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        super().__init__(message)
        self.source = source
        self.line = line


@dataclass(frozen=True)
class LaneLabel:
    """One validated label line."""

    raw_file: str
    lanes: tuple[tuple[int, ...], ...]
    h_samples: tuple[int, ...]
    source: str  # label file path
    line: int  # 1-based line number


def _error(source, line, problem: str) -> TuSimpleFormatError:
    source = str(source)
    where = f"{source}:{line}" if line is not None else source
    return TuSimpleFormatError(f"{where}: {problem}", source=source, line=line)


def _describe(value) -> str:
    """Short text for a decoded JSON value, e.g. ``'"abc" (string)'``."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({_json_type(value)})"


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _as_int(value):
    """Return ``value`` as an int, or ``None`` when it is not an integer.

    Booleans are not integers; floats with an integral (finite) value are.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _check_raw_file(raw_file, source, line) -> str:
    if not isinstance(raw_file, str) or not raw_file.strip():
        raise _error(source, line, f"raw_file must be a non-empty string, got {_describe(raw_file)}")
    if (
        PurePosixPath(raw_file).is_absolute()
        or PureWindowsPath(raw_file).is_absolute()
        or raw_file.startswith(("/", "\\"))
        or PureWindowsPath(raw_file).drive
    ):
        raise _error(source, line, f"raw_file must be a relative path, got absolute path {raw_file!r}")
    parts = raw_file.replace("\\", "/").split("/")
    if ".." in parts:
        raise _error(source, line, f"raw_file must not contain '..', got {raw_file!r}")
    return raw_file


def _check_h_samples(h_samples, source, line) -> tuple[int, ...]:
    if not isinstance(h_samples, list) or not h_samples:
        raise _error(
            source, line, f"h_samples must be a non-empty list of integers, got {_describe(h_samples)}"
        )
    ys = []
    for index, value in enumerate(h_samples):
        y = _as_int(value)
        if y is None:
            raise _error(
                source,
                line,
                f"h_samples must be a non-empty list of integers, "
                f"h_samples[{index}] is {_describe(value)}",
            )
        if y < 0:
            raise _error(source, line, f"h_samples[{index}] is {y}, must be >= 0")
        if ys and y <= ys[-1]:
            raise _error(
                source,
                line,
                f"h_samples not strictly increasing: h_samples[{index}] = {y} "
                f"follows h_samples[{index - 1}] = {ys[-1]}",
            )
        ys.append(y)
    return tuple(ys)


def _check_lanes(lanes, h_samples: tuple[int, ...], source, line) -> tuple[tuple[int, ...], ...]:
    if not isinstance(lanes, list):
        raise _error(source, line, f"lanes must be a list of lists, got {_describe(lanes)}")
    for index, lane in enumerate(lanes):
        if not isinstance(lane, list):
            raise _error(
                source, line, f"lanes must be a list of lists, lanes[{index}] is {_describe(lane)}"
            )
    result = []
    for index, lane in enumerate(lanes):
        if len(lane) != len(h_samples):
            raise _error(
                source,
                line,
                f"lane {index} has {len(lane)} points but h_samples has {len(h_samples)}",
            )
        xs = []
        for point, value in enumerate(lane):
            x = _as_int(value)
            if x is None:
                raise _error(
                    source,
                    line,
                    f"lane {index} point {point} (y={h_samples[point]}) is not an integer: "
                    f"{_describe(value)}",
                )
            if x < 0 and x != NO_POINT:
                raise _error(
                    source,
                    line,
                    f"lane {index} point {point} (y={h_samples[point]}) has x={x}; "
                    f"only {NO_POINT} (no point) or x >= 0 is allowed",
                )
            xs.append(x)
        result.append(tuple(xs))
    return tuple(result)


def parse_label_line(text: str, source: str, line: int) -> LaneLabel:
    """Parse and validate one label line; errors name ``source`` and ``line``."""
    source = str(source)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(source, line, f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    except (TypeError, ValueError) as exc:  # e.g. recursion / odd input types
        raise _error(source, line, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _error(source, line, f"not a JSON object, got {_json_type(obj)}")
    for key in _REQUIRED_KEYS:
        if key not in obj:
            raise _error(source, line, f"missing key {key!r}")
    raw_file = _check_raw_file(obj["raw_file"], source, line)
    h_samples = _check_h_samples(obj["h_samples"], source, line)
    lanes = _check_lanes(obj["lanes"], h_samples, source, line)
    return LaneLabel(raw_file=raw_file, lanes=lanes, h_samples=h_samples, source=source, line=line)


def _iter_lines(path):
    """Yield ``(line_number, text)`` for every non-blank line of ``path``."""
    source = str(path)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _error(source, number, f"not valid UTF-8: {exc.reason}") from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if text.strip():
                yield number, text


def read_label_file(path) -> list[LaneLabel]:
    """Read every label of one file (blank lines skipped).

    A file without any label line, or holding the same raw_file twice, is an error.
    """
    return _read_labels([path])


def read_label_files(paths) -> list[LaneLabel]:
    """Read several label files and concatenate their labels in the order given.

    Each file must hold at least one label; a raw_file that appears twice, in one file or
    across files, is an error naming both places.
    """
    paths = list(paths)
    if not paths:
        raise TuSimpleFormatError("no label files given")
    return _read_labels(paths)


def _read_labels(paths: Iterable) -> list[LaneLabel]:
    labels: list[LaneLabel] = []
    first_seen: dict[str, LaneLabel] = {}
    for path in paths:
        source = str(path)
        count = 0
        for number, text in _iter_lines(path):
            label = parse_label_line(text, source, number)
            previous = first_seen.get(label.raw_file)
            if previous is not None:
                raise _error(
                    source,
                    number,
                    f"duplicate raw_file {label.raw_file!r}, "
                    f"first seen at {previous.source}:{previous.line}",
                )
            first_seen[label.raw_file] = label
            labels.append(label)
            count += 1
        if count == 0:
            raise _error(source, None, "empty label file: no label lines")
    return labels


def _is_label_file_name(name: str) -> bool:
    return name.endswith(".json") and (name.startswith("label_data") or name == "test_label.json")


def find_label_files(root) -> list[Path]:
    """Label files directly in ``root``, sorted by name.

    Label files are ``*.json`` files whose name starts with ``label_data`` or is
    ``test_label.json``.  A root that is not a directory or holds none is an error.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise _error(root_path, None, "data set root is not a directory")
    found = sorted(
        (entry for entry in root_path.iterdir() if _is_label_file_name(entry.name) and entry.is_file()),
        key=lambda entry: entry.name,
    )
    if not found:
        raise _error(
            root_path, None, "no TuSimple label files (label_data*.json or test_label.json) in this directory"
        )
    return found


def image_path(root, label: LaneLabel) -> Path:
    """``root / label.raw_file``; an error naming the label's file and line if it is missing."""
    path = Path(root) / label.raw_file
    if not path.is_file():
        raise _error(label.source, label.line, f"image not found: {path}")
    return path



def missing_images(root, labels: Iterable[LaneLabel]) -> list[LaneLabel]:
    """The labels whose image is not at ``root / raw_file``, in label order."""
    return [label for label in labels if not (Path(root) / label.raw_file).is_file()]
