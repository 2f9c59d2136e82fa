"""Tests of lanemodel.workload.evaluate: the official TuSimple metric, with hand-computed numbers.

Most cases use ten rows, h_samples = 200, 210, ..., 290, so one row is worth 0.1 of a
lane's point accuracy.  A "vertical" lane (same x on every row) has slope k = 0, so its
threshold is exactly 20 px.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from shared_data import REAL_LABELS

from lanemodel.workload.evaluate import (
    MAX_RUN_TIME_MS,
    PIXEL_THRESHOLD,
    POINT_THRESHOLD,
    EvaluationError,
    evaluate_files,
    evaluate_image,
    lane_angle,
    line_accuracy,
    official_json,
)

H = list(range(200, 300, 10))  # 10 rows
N = len(H)
MISSING = [-2] * N


def vertical(x: float) -> list:
    return [x] * N


def with_rows(lane: list, rows: dict) -> list:
    """Copy of ``lane`` with the given row indices replaced."""
    out = list(lane)
    for index, value in rows.items():
        out[index] = value
    return out


# --------------------------------------------------------------------------- constants


def test_constants():
    assert PIXEL_THRESHOLD == 20.0
    assert POINT_THRESHOLD == 0.85
    assert MAX_RUN_TIME_MS == 200


# --------------------------------------------------------------------------- lane_angle


def test_lane_angle_vertical_lane_is_zero():
    assert lane_angle(vertical(100), H) == 0.0


def test_lane_angle_fewer_than_two_valid_points_is_zero():
    assert lane_angle(MISSING, H) == 0.0
    assert lane_angle(with_rows(MISSING, {3: 150}), H) == 0.0


def test_lane_angle_slope_one_ignores_missing_points():
    # x = y - 100 on rows 0..5 (y = 200..250 -> x = 100..150), missing on rows 6..9.
    # Least squares of x against y with intercept gives k = 1, angle = atan(1) = pi/4.
    lane = [y - 100 for y in H[:6]] + [-2] * 4
    assert lane_angle(lane, H) == pytest.approx(math.pi / 4, abs=1e-12)


def test_lane_angle_least_squares_with_intercept():
    # Points (y, x): (200, 0), (210, 10), (220, 0) and (230, 30); the rest missing.
    # mean y = 215, mean x = 10; centred y = -15, -5, 5, 15; centred x = -10, 0, -10, 20
    # k = sum(dy*dx) / sum(dy^2) = (150 + 0 - 50 + 300) / (225 + 25 + 25 + 225) = 400 / 500 = 0.8
    # (without an intercept it would be 12800 / 166500 = 0.0769: the intercept matters).
    lane = [0, 10, 0, 30] + [-2] * 6
    assert lane_angle(lane, H) == pytest.approx(math.atan(0.8), abs=1e-12)


def test_lane_angle_negative_slope():
    # x = 500 - 2y: k = -2, angle = atan(-2).
    lane = [500 - 2 * y if y < 250 else -2 for y in H]
    assert lane_angle(lane, H) == pytest.approx(math.atan(-2), abs=1e-12)


# --------------------------------------------------------------------------- line_accuracy


def test_line_accuracy_counts_rows_missing_in_both_as_hits():
    # rows: both missing -> hit; pred missing vs gt 5 -> |-100 - 5| = 105 miss; 5 vs 5 -> hit.
    assert line_accuracy([-2, -2, 5], [-2, 5, 5], 20.0) == 2 / 3


def test_line_accuracy_strict_threshold():
    gt = [100, 100, 100, 100]
    assert line_accuracy([119, 81, 119.99, 100], gt, 20.0) == 1.0
    assert line_accuracy([120, 80, 100, 100], gt, 20.0) == 0.5  # |diff| == 20 is not < 20


def test_line_accuracy_any_negative_is_missing():
    # -1, -50 and -2 all become -100; x = 0 is a real point (|0 - (-100)| = 100, a miss).
    assert line_accuracy([-1, -50, -2, 0], [-2, -2, -2, -2], 20.0) == 0.75
    # A missing point is never "near" a real point close to 0: gt 0 vs pred -100.
    assert line_accuracy([-2], [0], 20.0) == 0.0


def test_line_accuracy_length_mismatch_is_error():
    with pytest.raises(EvaluationError, match="predicted lane has 2 points but ground-truth lane has 3"):
        line_accuracy([1, 2], [1, 2, 3], 20.0)


# --------------------------------------------------------------------------- evaluate_image


def test_perfect_prediction():
    gt = [vertical(100), vertical(300)]
    assert evaluate_image([list(lane) for lane in gt], gt, H, 10) == (1.0, 0.0, 0.0)


def test_shift_below_threshold_is_perfect():
    gt = [vertical(100), vertical(300)]
    pred = [vertical(119), vertical(281)]  # |diff| = 19 < 20 on every row
    assert evaluate_image(pred, gt, H, 10) == (1.0, 0.0, 0.0)


def test_shift_at_or_above_threshold_misses_everything():
    gt = [vertical(100), vertical(300)]
    pred = [vertical(120), vertical(330)]  # |diff| = 20 and 30: no row is a hit
    # both gt lanes: best accuracy 0 -> FN 2; matched 0 -> FP = 2 - 0 = 2
    # accuracy = 0 / 2 = 0; FP rate = 2 / 2 = 1; FN rate = 2 / 2 = 1
    assert evaluate_image(pred, gt, H, 10) == (0.0, 1.0, 1.0)


def test_partial_shift_against_point_threshold():
    gt = [vertical(100)]
    # 1 of 10 rows off by 25 -> 0.9 >= 0.85: matched
    assert evaluate_image([with_rows(vertical(100), {0: 125})], gt, H, 10) == (0.9, 0.0, 0.0)
    # 2 of 10 rows off -> 0.8 < 0.85: FN, and the predicted lane is a FP
    assert evaluate_image([with_rows(vertical(100), {0: 125, 9: 75})], gt, H, 10) == (0.8, 1.0, 1.0)


def test_slanted_lane_uses_cos_adjusted_threshold():
    # gt x = y - 100 on all rows: k = 1, threshold = 20 / cos(atan(1)) = 20 * sqrt(2) = 28.2843
    gt = [[y - 100 for y in H]]
    # shifted by 25: a miss with a plain 20 px threshold, a hit with 28.28 px -> perfect
    assert evaluate_image([[x + 25 for x in gt[0]]], gt, H, 10) == (1.0, 0.0, 0.0)
    # shifted by 28 (< 28.2843): still perfect
    assert evaluate_image([[x - 28 for x in gt[0]]], gt, H, 10) == (1.0, 0.0, 0.0)
    # shifted by 29 (> 28.2843): every row misses -> accuracy 0, FP 1/1, FN 1/1
    assert evaluate_image([[x + 29 for x in gt[0]]], gt, H, 10) == (0.0, 1.0, 1.0)
    # the same 25 px shift on a vertical lane (threshold 20) misses
    assert evaluate_image([vertical(125)], [vertical(100)], H, 10) == (0.0, 1.0, 1.0)


def test_slope_two_threshold():
    # gt x = 2y - 300 on rows 0..4 (y 200..240 -> x 100..180), missing on rows 5..9.
    # k = 2, threshold = 20 * sqrt(1 + 4) = 44.72.  The pred shifts the 5 points by 44
    # (hits) and also misses rows 5..9 exactly like the gt (hits): accuracy 1.
    gt = [[2 * y - 300 if y < 250 else -2 for y in H]]
    pred = [[x + 44 if x >= 0 else -2 for x in gt[0]]]
    assert evaluate_image(pred, gt, H, 10) == (1.0, 0.0, 0.0)
    # by 45 px the 5 points miss: 5 / 10 = 0.5 < 0.85
    pred = [[x + 45 if x >= 0 else -2 for x in gt[0]]]
    assert evaluate_image(pred, gt, H, 10) == (0.5, 1.0, 1.0)


def test_missing_lane_is_false_negative():
    gt = [vertical(100), vertical(300), vertical(500)]
    pred = [vertical(100), vertical(300)]
    # line accuracies 1, 1, 0 -> accuracy 2/3; matched 2 -> FP = 2 - 2 = 0; FN 1 / 3
    assert evaluate_image(pred, gt, H, 10) == (2 / 3, 0.0, 1 / 3)


def test_no_predicted_lanes():
    gt = [vertical(100), vertical(300)]
    # no pred: every best is 0 -> FN 2/2; FP rate is 0 without predicted lanes
    assert evaluate_image([], gt, H, 10) == (0.0, 0.0, 1.0)


def test_extra_lanes_are_false_positives():
    gt = [vertical(100), vertical(300)]
    pred = [vertical(100), vertical(300), vertical(600), vertical(900)]
    # 4 predicted lanes <= len(gt) + 2 = 4: scored; FP = 4 - 2 = 2 -> 2 / 4
    assert evaluate_image(pred, gt, H, 10) == (1.0, 0.5, 0.0)
    # 5 predicted lanes > len(gt) + 2: the image scores (0, 0, 1)
    assert evaluate_image(pred + [vertical(1100)], gt, H, 10) == (0.0, 0.0, 1.0)


def test_run_time_limit():
    gt = [vertical(100), vertical(300)]
    pred = [vertical(100), vertical(300)]
    assert evaluate_image(pred, gt, H, 200) == (1.0, 0.0, 0.0)
    assert evaluate_image(pred, gt, H, 200.0) == (1.0, 0.0, 0.0)
    assert evaluate_image(pred, gt, H, 201) == (0.0, 0.0, 1.0)
    assert evaluate_image(pred, gt, H, 200.5) == (0.0, 0.0, 1.0)


def test_all_missing_gt_lane_counts_as_a_lane():
    gt = [vertical(100), MISSING]
    # pred lane 100 vs the all -2 gt lane: |100 - (-100)| = 200 on every row -> 0.
    # line accuracies 1, 0 -> accuracy 1/2; matched 1 -> FP 0/1; FN 1 of len(gt) = 2
    assert evaluate_image([vertical(100)], gt, H, 10) == (0.5, 0.0, 0.5)
    # an all -2 predicted lane matches it (every row missing in both = hit)
    assert evaluate_image([vertical(100), MISSING], gt, H, 10) == (1.0, 0.0, 0.0)


def test_all_missing_gt_lane_matched_by_a_short_prediction():
    # gt holds only an all -2 lane; a pred lane with a point on 1 row of 10 is missing on
    # the other 9 -> 0.9 >= 0.85: matched.  accuracy 0.9, FP 0, FN 0.
    assert evaluate_image([with_rows(MISSING, {4: 640})], [MISSING], H, 10) == (0.9, 0.0, 0.0)
    # a pred lane on 2 rows -> 0.8: FN 1/1 and FP 1/1
    assert evaluate_image([with_rows(MISSING, {4: 640, 5: 650})], [MISSING], H, 10) == (0.8, 1.0, 1.0)


def test_partial_prediction_against_real_and_missing_gt_lanes():
    gt = [vertical(100), MISSING]
    pred = [with_rows(MISSING, {0: 100, 1: 100, 2: 100, 3: 100})]  # 4 of 10 rows at x = 100
    # vs lane 100: 4 hits (rows 0-3), 6 misses (-100 vs 100) -> 0.4
    # vs missing lane: 4 misses (100 vs -100), 6 hits -> 0.6
    # both < 0.85 -> FN 2/2; matched 0 -> FP 1/1; accuracy (0.4 + 0.6) / 2 = 0.5
    assert evaluate_image(pred, gt, H, 10) == (0.5, 1.0, 1.0)


def test_more_than_four_gt_lanes_drops_one_fn_and_the_smallest_accuracy():
    gt = [vertical(x) for x in (100, 200, 300, 400, 500)]
    # 4 of 5 found: accs 1,1,1,1,0; FN 1 -> 0 (len(gt) > 4); sum 4 - min 0 = 4 -> 4/4
    assert evaluate_image(gt[:4], gt, H, 10) == (1.0, 0.0, 0.0)
    # 3 of 5 found: accs 1,1,1,0,0; FN 2 -> 1; sum 3 - 0 = 3 -> 3/4; FN 1/4; FP 0/3
    assert evaluate_image(gt[:3], gt, H, 10) == (0.75, 0.0, 0.25)
    # all 5 found, one at 0.9: FN stays 0; sum 4.9 - 0.9 -> 4/4 = 1
    pred = gt[:4] + [with_rows(vertical(500), {0: 530})]
    acc, fp, fn = evaluate_image(pred, gt, H, 10)
    assert acc == pytest.approx(1.0, abs=1e-15) and fp == 0.0 and fn == 0.0
    # all of 6 found: sum 6 - min 1 = 5 -> 5/4 = 1.25 (accuracy above 1 is the official quirk)
    six = [vertical(x) for x in (100, 200, 300, 400, 500, 600)]
    assert evaluate_image(six, six, H, 10) == (1.25, 0.0, 0.0)


def test_more_than_four_gt_lanes_and_no_prediction():
    gt = [vertical(x) for x in (100, 200, 300, 400, 500)]
    # accs all 0; FN 5 -> 4 -> 4/4 = 1; accuracy (0 - 0)/4 = 0; FP 0 (no pred)
    assert evaluate_image([], gt, H, 10) == (0.0, 0.0, 1.0)


def test_fp_goes_negative_when_one_prediction_matches_two_gt_lanes():
    gt = [vertical(100), vertical(110)]
    pred = [vertical(105)]  # |diff| = 5 from both gt lanes
    # both matched with 1.0 -> accuracy 1; FP = 1 - 2 = -1 -> -1/1; FN 0
    assert evaluate_image(pred, gt, H, 10) == (1.0, -1.0, 0.0)


def test_no_gt_lanes():
    # accuracy 0 / max(min(4, 0), 1) = 0; every pred lane is a FP; FN 0 / 1
    assert evaluate_image([vertical(100)], [], H, 10) == (0.0, 1.0, 0.0)
    assert evaluate_image([], [], H, 10) == (0.0, 0.0, 0.0)
    # 3 pred lanes > 0 + 2
    assert evaluate_image([vertical(1)] * 3, [], H, 10) == (0.0, 0.0, 1.0)


def test_float_and_nan_predictions():
    gt = [vertical(100)]
    # float x are fine; NaN counts as missing (NaN >= 0 is False -> -100) exactly as in LaneEval
    pred = [with_rows(vertical(100.5), {0: float("nan")})]
    assert evaluate_image(pred, gt, H, 10) == (0.9, 0.0, 0.0)


def test_wrong_length_prediction_lane_is_error():
    gt = [vertical(100)]
    with pytest.raises(EvaluationError, match=re.escape("lane 1 has 9 points but h_samples has 10")):
        evaluate_image([vertical(100), vertical(100)[:9]], gt, H, 10)
    # checked before the run-time and lane-count rules, as in the reference
    with pytest.raises(EvaluationError, match="lane 0 has 11 points"):
        evaluate_image([vertical(100) + [5]], gt, H, 500)


def test_bad_inputs_to_evaluate_image():
    with pytest.raises(EvaluationError, match="run_time must be a number"):
        evaluate_image([], [vertical(1)], H, "10")
    with pytest.raises(EvaluationError, match="run_time must be a number"):
        evaluate_image([], [vertical(1)], H, True)
    with pytest.raises(EvaluationError, match="lane 0 point 2 is not a number"):
        evaluate_image([with_rows(vertical(1), {2: "x"})], [vertical(1)], H, 10)
    with pytest.raises(EvaluationError, match="ground-truth lane 0 has 3 points but h_samples has 10"):
        evaluate_image([], [[1, 2, 3]], H, 10)
    with pytest.raises(EvaluationError, match="h_samples is empty"):
        evaluate_image([], [], [], 10)


# --------------------------------------------------------------------------- files


def gt_line(raw_file: str, lanes: list) -> str:
    return json.dumps({"lanes": lanes, "h_samples": H, "raw_file": raw_file})


def pred_line(raw_file: str, lanes: list, run_time=10) -> str:
    return json.dumps({"raw_file": raw_file, "lanes": lanes, "run_time": run_time})


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def gt_file(tmp_path) -> Path:
    return write(
        tmp_path / "gt.json",
        [
            gt_line("a.jpg", [vertical(100), vertical(300)]),
            gt_line("b.jpg", [vertical(100), vertical(300), vertical(500)]),
        ],
    )


def test_evaluate_files_means_over_gt_images(tmp_path, gt_file):
    pred = write(
        tmp_path / "pred.json",
        [
            # order differs from the GT file: paired by raw_file
            pred_line("b.jpg", [vertical(100)]),  # (1/3, 0/1, 2/3)
            pred_line("a.jpg", [vertical(100), vertical(300)]),  # (1, 0, 0)
        ],
    )
    result = evaluate_files(pred, gt_file)
    assert result == {"Accuracy": (1 / 3 + 1.0) / 2, "FP": 0.0, "FN": (2 / 3 + 0.0) / 2}
    assert result["Accuracy"] == pytest.approx(2 / 3)
    assert result["FN"] == pytest.approx(1 / 3)


def test_evaluate_files_skips_blank_lines(tmp_path, gt_file):
    pred = tmp_path / "pred.json"
    pred.write_text(
        "\n" + pred_line("a.jpg", [vertical(100), vertical(300)]) + "\n\n"
        + pred_line("b.jpg", [vertical(100), vertical(300), vertical(500)]),
        encoding="utf-8",
    )
    assert evaluate_files(pred, gt_file) == {"Accuracy": 1.0, "FP": 0.0, "FN": 0.0}


def test_evaluate_files_duplicate_gt_raw_file_follows_reference(tmp_path):
    # The reference keys the GT by raw_file: the last line wins and the image counts once,
    # while every prediction line is summed.  3 GT lines, 2 distinct images.
    gt = write(
        tmp_path / "gt.json",
        [gt_line("a.jpg", [vertical(100)]), gt_line("b.jpg", [vertical(200)]), gt_line("a.jpg", [vertical(300)])],
    )
    pred = write(
        tmp_path / "pred.json",
        [
            pred_line("a.jpg", [vertical(300)]),  # vs the last "a.jpg" line: (1, 0, 0)
            pred_line("b.jpg", [vertical(200)]),  # (1, 0, 0)
            pred_line("a.jpg", [vertical(100)]),  # vs x=300: (0, 1, 1)
        ],
    )
    # sums (2, 1, 1) over 2 distinct GT images
    assert evaluate_files(pred, gt) == {"Accuracy": 1.0, "FP": 0.5, "FN": 0.5}


def test_evaluate_files_mismatched_line_counts(tmp_path, gt_file):
    pred = write(tmp_path / "pred.json", [pred_line("a.jpg", [vertical(100)])])
    with pytest.raises(
        EvaluationError, match=re.escape(f"{pred} holds 1 prediction lines but {gt_file} holds 2 ground-truth lines")
    ):
        evaluate_files(pred, gt_file)


def test_evaluate_files_unknown_raw_file(tmp_path, gt_file):
    pred = write(tmp_path / "pred.json", [pred_line("a.jpg", []), pred_line("zzz.jpg", [])])
    with pytest.raises(
        EvaluationError, match=re.escape(f"{pred}:2: raw_file 'zzz.jpg' is not in ground truth {gt_file}")
    ):
        evaluate_files(pred, gt_file)


def test_evaluate_files_wrong_length_pred_lane(tmp_path, gt_file):
    pred = write(
        tmp_path / "pred.json",
        [pred_line("a.jpg", []), pred_line("b.jpg", [vertical(100), vertical(300)[:9]])],
    )
    with pytest.raises(
        EvaluationError, match=re.escape(f"{pred}:2: lane 1 has 9 points but h_samples has 10 (raw_file 'b.jpg')")
    ):
        evaluate_files(pred, gt_file)


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"raw_file": "a.jpg", "lanes": [', "not valid JSON"),
        ("[1, 2]", "prediction is not a JSON object"),
        ('{"raw_file": "a.jpg", "lanes": []}', "prediction missing key(s) 'run_time'"),
        ('{"run_time": 5}', "prediction missing key(s) 'raw_file', 'lanes'"),
        ('{"raw_file": 3, "lanes": [], "run_time": 5}', "raw_file must be a string"),
        ('{"raw_file": "a.jpg", "lanes": [1], "run_time": 5}', "lanes must be a list of lists"),
        ('{"raw_file": "a.jpg", "lanes": [[1, "x"]], "run_time": 5}', "lane 0 point 1 is not a number"),
        ('{"raw_file": "a.jpg", "lanes": [], "run_time": "5"}', "run_time must be a number"),
    ],
)
def test_evaluate_files_bad_prediction_line(tmp_path, gt_file, line, problem):
    pred = tmp_path / "pred.json"
    pred.write_text(pred_line("b.jpg", []) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=re.escape(f"{pred}:2: {problem}")):
        evaluate_files(pred, gt_file)


def test_evaluate_files_bad_gt_line(tmp_path):
    gt = write(tmp_path / "gt.json", [gt_line("a.jpg", []), gt_line("b.jpg", [[1, 2]])])
    pred = write(tmp_path / "pred.json", [pred_line("a.jpg", []), pred_line("b.jpg", [])])
    with pytest.raises(EvaluationError, match=re.escape(f"{gt}:2: lane 0 has 2 points but h_samples has 10")):
        evaluate_files(pred, gt)


def test_evaluate_files_unreadable_and_empty(tmp_path, gt_file):
    with pytest.raises(EvaluationError, match="cannot read prediction file"):
        evaluate_files(tmp_path / "missing.json", gt_file)
    empty_pred = write(tmp_path / "p.json", [])
    empty_gt = write(tmp_path / "g.json", [])
    with pytest.raises(EvaluationError, match=re.escape(f"{empty_gt}: ground-truth file holds no labels")):
        evaluate_files(empty_pred, empty_gt)


def test_evaluate_files_real_labels_against_themselves(tmp_path):
    assert REAL_LABELS.is_file(), f"real TuSimple labels not found at {REAL_LABELS} (shared/ beside the project)"
    with open(REAL_LABELS, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    # The real file holds all -2 lanes; as predictions they match themselves (every row
    # missing in both = hit), so nothing is lost.  Every image has 4 lanes (<= 4: no drop).
    assert sum(all(x == -2 for x in lane) for row in rows for lane in row["lanes"]) == 35
    pred = write(
        tmp_path / "pred.json",
        [pred_line(row["raw_file"], row["lanes"], run_time=10) for row in reversed(rows)],
    )
    assert evaluate_files(pred, REAL_LABELS) == {"Accuracy": 1.0, "FP": 0.0, "FN": 0.0}


def test_evaluate_files_real_labels_without_the_empty_lanes(tmp_path):
    # Dropping the all -2 lanes from the predictions: every real lane still matched, and each
    # all -2 GT lane is matched only if some predicted lane is missing on >= 85 % of the rows.
    with open(REAL_LABELS, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    pred = write(
        tmp_path / "pred.json",
        [
            pred_line(row["raw_file"], [lane for lane in row["lanes"] if any(x >= 0 for x in lane)])
            for row in rows
        ],
    )
    # independent computation of the expected numbers from the metric's definition
    accuracy = fp = fn = 0.0
    for row in rows:
        real = [lane for lane in row["lanes"] if any(x >= 0 for x in lane)]
        bests = []
        for lane in row["lanes"]:
            if any(x >= 0 for x in lane):
                bests.append(1.0)
            else:  # fraction of rows where the best predicted lane is missing
                bests.append(max(sum(1 for x in p if x < 0) / 48 for p in real))
        matched = sum(1 for b in bests if b >= 0.85)
        accuracy += sum(bests) / 4
        fp += (len(real) - matched) / len(real)
        fn += (4 - matched) / 4
    result = evaluate_files(pred, REAL_LABELS)
    assert result["Accuracy"] == pytest.approx(accuracy / 200, abs=1e-12)
    assert result["FP"] == pytest.approx(fp / 200, abs=1e-12)
    assert result["FN"] == pytest.approx(fn / 200, abs=1e-12)
    assert result["FN"] > 0.0  # some all -2 GT lanes are not matched by any real lane


# --------------------------------------------------------------------------- official_json


def test_official_json_format():
    text = official_json({"Accuracy": 0.5, "FP": 0.25, "FN": 0.0})
    assert text == (
        '[{"name": "Accuracy", "value": 0.5, "order": "desc"}, '
        '{"name": "FP", "value": 0.25, "order": "asc"}, '
        '{"name": "FN", "value": 0.0, "order": "asc"}]'
    )
    assert json.loads(text)[0] == {"name": "Accuracy", "value": 0.5, "order": "desc"}


def test_official_json_missing_key():
    with pytest.raises(EvaluationError, match="'FN'"):
        official_json({"Accuracy": 1.0, "FP": 0.0})
