"""The official TuSimple lane metric (Accuracy, FP, FN), numerically identical to ``LaneEval``.

Reference: ``evaluate/lane.py`` of the tusimple-benchmark repository (``LaneEval.bench`` and
``LaneEval.bench_one_submit``), restated in ``shared/tusimple/README.md``.  All quirks are kept:

* per image: every predicted lane must be as long as ``h_samples`` (else an error, checked
  before anything else); ``run_time > 200`` ms or more than ``len(gt) + 2`` predicted lanes
  gives ``(0, 0, 1)``;
* per ground-truth lane g: threshold ``20 / cos(atan(k))`` with k the least-squares slope
  (with intercept) of x against y over g's points with x >= 0; k = 0 with fewer than 2 points;
* point accuracy: every negative x (pred and gt) becomes -100, a row is a hit when
  ``|p - g| < threshold`` (so rows missing in both are hits), divided by ``len(h_samples)``;
* each g takes the best accuracy over all predicted lanes (0 without any); best < 0.85 is
  a false negative, otherwise g is matched (not one-to-one: one predicted lane may match
  several g);
* ``FP = len(pred) - matched`` (negative when one predicted lane matches several g);
* ``len(gt) > 4``: FN -= 1 when FN > 0 and the smallest best is dropped from the sum;
  accuracy = sum / max(min(4, len(gt)), 1); FP rate = FP / len(pred) (0 without predicted
  lanes); FN rate = FN / max(min(4, len(gt)), 1);
* ground-truth lanes whose x are all -2 are lanes like any other: they count in len(gt),
  and a predicted lane matches one by being missing on >= 85 % of the rows.

Files (:func:`evaluate_files`):

* one JSON object per line; blank (whitespace-only) lines are skipped in both files and
  line numbers in messages are physical 1-based line numbers;
* both files must hold the same number of (non-blank) lines;
* every prediction needs ``raw_file`` (a string), ``lanes`` (a list of lists of numbers;
  floats are fine, NaN counts as missing exactly as in the reference) and ``run_time``
  (a number, ms); extra keys are ignored;
* ground-truth lines are validated with :func:`lanemodel.workload.tusimple.parse_label_line`, but
  the ground-truth file is parsed here rather than with ``read_label_file`` because the
  reference keys it by ``raw_file`` in a dict: a raw_file given twice is *not* an error,
  the last line wins and the image counts once;
* predictions are summed line by line (a duplicated prediction counts twice, as in the
  reference) and Accuracy, FP and FN are divided by the number of distinct ground-truth
  raw_file values.

Every failure raises :class:`EvaluationError` whose message names the file and line.
"""

from __future__ import annotations

import json
import numbers

import numpy as np

from lanemodel.workload.tusimple import TuSimpleFormatError, parse_label_line

__all__ = [
    "EvaluationError",
    "PIXEL_THRESHOLD",
    "POINT_THRESHOLD",
    "MAX_RUN_TIME_MS",
    "lane_angle",
    "lane_threshold",
    "line_accuracy",
    "evaluate_image",
    "evaluate_files",
    "official_json",
]

PIXEL_THRESHOLD = 20.0
POINT_THRESHOLD = 0.85
MAX_RUN_TIME_MS = 200

#: Value every negative x is mapped to before comparing (reference: ``-100``).
_MISSING = -100.0


class EvaluationError(ValueError):
    """Malformed input to the TuSimple metric; the message names file and line when known."""


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _as_array(xs, what: str) -> np.ndarray:
    try:
        values = list(xs)
    except TypeError:
        raise EvaluationError(f"{what} must be a list of numbers, got {type(xs).__name__}") from None
    for index, value in enumerate(values):
        if not _is_number(value):
            raise EvaluationError(f"{what} point {index} is not a number: {value!r}")
    return np.asarray(values, dtype=np.float64)


def lane_angle(xs, h_samples) -> float:
    """Angle (radians) ``atan(k)`` of a ground-truth lane, as ``LaneEval.get_angle``.

    k is the least-squares slope of x against y over the points with x >= 0, fitted with
    an intercept (the reference uses sklearn's ``LinearRegression``: centre both variables,
    then solve with LAPACK ``gelsd``; this does the same with numpy).  Fewer than 2 valid
    points gives 0.
    """
    x = _as_array(xs, "lane")
    y = _as_array(h_samples, "h_samples")
    if x.shape != y.shape:
        raise EvaluationError(f"lane has {x.size} points but h_samples has {y.size}")
    valid = x >= 0
    x, y = x[valid], y[valid]
    if x.size <= 1:
        return 0.0
    y_centred = y - np.mean(y)
    x_centred = x - np.mean(x)
    coef = np.linalg.lstsq(y_centred[:, None], x_centred, rcond=None)[0]
    return float(np.arctan(coef[0]))


def lane_threshold(xs, h_samples) -> float:
    """Pixel threshold of a ground-truth lane: ``20 / cos(lane_angle)``."""
    return float(PIXEL_THRESHOLD / np.cos(lane_angle(xs, h_samples)))


def line_accuracy(pred_xs, gt_xs, threshold) -> float:
    """Fraction of rows where ``|pred - gt| < threshold`` after mapping negatives to -100."""
    pred = _as_array(pred_xs, "predicted lane")
    gt = _as_array(gt_xs, "ground-truth lane")
    if pred.shape != gt.shape:
        raise EvaluationError(f"predicted lane has {pred.size} points but ground-truth lane has {gt.size}")
    if gt.size == 0:
        raise EvaluationError("lanes are empty")
    # ``x >= 0`` is False for NaN, so NaN becomes -100 exactly as in the reference.
    pred = np.where(pred >= 0, pred, _MISSING)
    gt = np.where(gt >= 0, gt, _MISSING)
    hits = np.sum(np.where(np.abs(pred - gt) < threshold, 1.0, 0.0))
    return float(hits / gt.size)


def evaluate_image(pred_lanes, gt_lanes, h_samples, run_time) -> tuple[float, float, float]:
    """(accuracy, fp_rate, fn_rate) of one image, as ``LaneEval.bench``.

    Raises :class:`EvaluationError` when a predicted lane's length differs from
    ``len(h_samples)`` (even when ``run_time`` is over the limit, as in the reference).
    """
    ys = _as_array(h_samples, "h_samples")
    if ys.size == 0:
        raise EvaluationError("h_samples is empty")
    if not _is_number(run_time):
        raise EvaluationError(f"run_time must be a number, got {run_time!r}")
    try:
        pred = [list(lane) for lane in pred_lanes]
        gt = [list(lane) for lane in gt_lanes]
    except TypeError:
        raise EvaluationError("lanes must be lists of lists of numbers") from None
    for index, lane in enumerate(pred):
        if len(lane) != ys.size:
            raise EvaluationError(f"lane {index} has {len(lane)} points but h_samples has {ys.size}")
    for index, lane in enumerate(gt):
        if len(lane) != ys.size:
            raise EvaluationError(
                f"ground-truth lane {index} has {len(lane)} points but h_samples has {ys.size}"
            )
    pred_arrays = [_as_array(lane, f"lane {index}") for index, lane in enumerate(pred)]
    gt_arrays = [_as_array(lane, f"ground-truth lane {index}") for index, lane in enumerate(gt)]

    if run_time > MAX_RUN_TIME_MS or len(gt) + 2 < len(pred):
        return 0.0, 0.0, 1.0

    line_accs: list[float] = []
    fn = 0.0
    matched = 0.0
    for gt_lane in gt_arrays:
        threshold = lane_threshold(gt_lane, ys)
        accs = [line_accuracy(pred_lane, gt_lane, threshold) for pred_lane in pred_arrays]
        best = max(accs) if accs else 0.0
        if best < POINT_THRESHOLD:
            fn += 1
        else:
            matched += 1
        line_accs.append(best)
    fp = len(pred) - matched
    if len(gt) > 4 and fn > 0:
        fn -= 1
    total = sum(line_accs)
    if len(gt) > 4:
        total -= min(line_accs)
    denominator = max(min(4.0, len(gt)), 1.0)
    accuracy = total / denominator
    fp_rate = fp / len(pred) if len(pred) > 0 else 0.0
    fn_rate = fn / denominator
    return float(accuracy), float(fp_rate), float(fn_rate)


def _iter_json_lines(path, kind: str):
    """Yield ``(line_number, text)`` for the non-blank lines of ``path``."""
    try:
        with open(path, "rb") as handle:
            raw_lines = handle.readlines()
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read {kind} file: {exc.strerror or exc}") from None
    for number, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EvaluationError(f"{path}:{number}: not valid UTF-8: {exc.reason}") from None
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if text.strip():
            yield number, text


def _read_predictions(path) -> list[tuple[int, str, list, object]]:
    predictions = []
    for number, text in _iter_json_lines(path, "prediction"):
        where = f"{path}:{number}"
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{where}: not valid JSON: {exc.msg} at column {exc.colno}") from None
        except ValueError as exc:
            raise EvaluationError(f"{where}: not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise EvaluationError(f"{where}: prediction is not a JSON object")
        missing = [key for key in ("raw_file", "lanes", "run_time") if key not in obj]
        if missing:
            raise EvaluationError(f"{where}: prediction missing key(s) {', '.join(map(repr, missing))}")
        raw_file, lanes, run_time = obj["raw_file"], obj["lanes"], obj["run_time"]
        if not isinstance(raw_file, str):
            raise EvaluationError(f"{where}: raw_file must be a string, got {raw_file!r}")
        if not isinstance(lanes, list) or not all(isinstance(lane, list) for lane in lanes):
            raise EvaluationError(f"{where}: lanes must be a list of lists")
        for index, lane in enumerate(lanes):
            for point, value in enumerate(lane):
                if not _is_number(value):
                    raise EvaluationError(f"{where}: lane {index} point {point} is not a number: {value!r}")
        if not _is_number(run_time):
            raise EvaluationError(f"{where}: run_time must be a number, got {run_time!r}")
        predictions.append((number, raw_file, lanes, run_time))
    return predictions


def _read_ground_truth(path):
    """(number of non-blank lines, {raw_file: LaneLabel}); the last duplicate wins."""
    labels = {}
    count = 0
    for number, text in _iter_json_lines(path, "ground-truth"):
        try:
            label = parse_label_line(text, str(path), number)
        except TuSimpleFormatError as exc:
            raise EvaluationError(str(exc)) from exc
        labels[label.raw_file] = label
        count += 1
    return count, labels


def evaluate_files(pred_path, gt_path) -> dict[str, float]:
    """Official file-level metric: ``{"Accuracy": ..., "FP": ..., "FN": ...}``."""
    predictions = _read_predictions(pred_path)
    gt_count, gts = _read_ground_truth(gt_path)
    if len(predictions) != gt_count:
        raise EvaluationError(
            f"{pred_path} holds {len(predictions)} prediction lines but "
            f"{gt_path} holds {gt_count} ground-truth lines; they must be equal"
        )
    if not gts:
        raise EvaluationError(f"{gt_path}: ground-truth file holds no labels")
    accuracy, fp, fn = 0.0, 0.0, 0.0
    for number, raw_file, lanes, run_time in predictions:
        label = gts.get(raw_file)
        if label is None:
            raise EvaluationError(f"{pred_path}:{number}: raw_file {raw_file!r} is not in ground truth {gt_path}")
        try:
            a, p, n = evaluate_image(lanes, label.lanes, label.h_samples, run_time)
        except EvaluationError as exc:
            raise EvaluationError(f"{pred_path}:{number}: {exc} (raw_file {raw_file!r})") from None
        accuracy += a
        fp += p
        fn += n
    num = len(gts)
    return {"Accuracy": accuracy / num, "FP": fp / num, "FN": fn / num}


def official_json(result: dict[str, float]) -> str:
    """The official submission result string (the first entry is the ranking metric)."""
    try:
        accuracy, fp, fn = result["Accuracy"], result["FP"], result["FN"]
    except KeyError as exc:
        raise EvaluationError(f"result lacks key {exc.args[0]!r}") from None
    return json.dumps(
        [
            {"name": "Accuracy", "value": accuracy, "order": "desc"},
            {"name": "FP", "value": fp, "order": "asc"},
            {"name": "FN", "value": fn, "order": "asc"},
        ]
    )
