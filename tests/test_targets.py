import numpy as np
import pytest

from lanemodel.training.targets import (
    anchor_rows,
    anchor_rows_in_input,
    decode_logits,
    encode_lanes,
    order_lanes,
    segmentation_mask,
)
from lanemodel.workload.tusimple import read_label_file

H = list(range(160, 711, 10))


def one_hot_logits(target: np.ndarray, griding: int) -> np.ndarray:
    rows, lanes = target.shape
    logits = np.full((griding + 1, rows, lanes), -20.0)
    for r in range(rows):
        for s in range(lanes):
            logits[target[r, s], r, s] = 20.0
    return logits


def test_anchor_rows_match_ufld_tusimple_anchors():
    assert anchor_rows(56) == tuple(H)
    # UFLD's TuSimple row anchors for a 288-high input are 64, 68, ..., 284
    assert np.allclose(anchor_rows_in_input(56, 288), np.arange(64, 285, 4))
    assert anchor_rows(2) == (160, 710)
    with pytest.raises(ValueError, match="num_rows must be 1..56, got 57"):
        anchor_rows(57)


def test_encode_bins_x_into_cells_and_marks_absent():
    lane = [-2] * 56
    lane[55] = 0        # first cell
    lane[54] = 1279     # last cell
    lane[53] = 640      # 640 * 100 / 1280 = 50
    lane[52] = 12       # 12 * 100 / 1280 = 0.94 -> 0
    lane[51] = 13       # 1.01 -> 1
    target = encode_lanes([lane], H, num_rows=56, num_lanes=4, griding_num=100)
    assert target.shape == (56, 4)
    assert list(target[51:, 0]) == [1, 0, 50, 99, 0]
    assert (target[:51, 0] == 100).all() and (target[:, 1:] == 100).all()


def test_lanes_are_ordered_left_to_right_and_empty_lanes_dropped():
    right = [-2] * 54 + [900, 910]
    empty = [-2] * 56
    left = [-2] * 54 + [300, 290]
    ordered = order_lanes([right, empty, left], 4)
    assert ordered == [left, right]


def test_more_lanes_than_slots_keeps_the_ones_nearest_the_centre():
    lanes = [[-2] * 55 + [x] for x in (10, 500, 700, 1270, 600, 800)]
    kept = order_lanes(lanes, 4)
    assert [lane[-1] for lane in kept] == [500, 600, 700, 800]


def test_round_trip_on_real_labels_is_within_half_a_cell(real_labels):
    labels = read_label_file(real_labels)
    cell_width = 1280 / 100
    checked = 0
    for label in labels[:50]:
        target = encode_lanes(label.lanes, label.h_samples, 56, 4, 100)
        decoded = decode_logits(one_hot_logits(target, 100), label.h_samples, 100)
        expected = order_lanes(label.lanes, 4)
        assert len(decoded) == len(expected)
        for got, want in zip(decoded, expected):
            for g, w in zip(got, want):
                if w < 0:
                    assert g == -2
                else:
                    assert abs(g - w) <= cell_width / 2 + 0.5
                    checked += 1
    assert checked > 5000


def test_decode_uses_softmax_expectation_and_absent_class():
    logits = np.full((11, 56, 1), -50.0)
    logits[3, :, 0] = 5.0
    logits[4, :, 0] = 5.0            # even split between cells 3 and 4 -> 3.5 -> x = 4 * 128 = 512
    logits[10, :10, 0] = 50.0        # first ten rows absent
    (lane,) = decode_logits(logits, H, griding_num=10)
    assert lane[:10] == [-2] * 10
    assert lane[10:] == [512] * 46


def test_decode_drops_lanes_with_fewer_than_two_points_and_rejects_wrong_shape():
    logits = np.full((11, 56, 2), -50.0)
    logits[10] = 50.0
    logits[2, 55, 0], logits[10, 55, 0] = 60.0, -50.0
    assert decode_logits(logits, H, 10) == []
    with pytest.raises(ValueError, match="logits have 11 classes, expected griding_num \\+ 1 = 101"):
        decode_logits(logits, H, 100)


def test_segmentation_mask_marks_lane_slots():
    lane = [-2] * 46 + [640] * 10   # vertical line at x=640 from y=620 to 710
    mask = segmentation_mask([lane], H, 4, height=90, width=160)
    assert set(np.unique(mask)) == {0, 1}
    assert (mask[78:88, 80] == 1).all()
    assert mask[:70].sum() == 0
