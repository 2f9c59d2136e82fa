"""Row-anchor targets the UFLD way, and decoding of model output back to TuSimple lanes.

Each lane is described at fixed anchor rows by the grid cell its x falls in (``griding_num`` cells
across the image width) or by the extra "absent" class ``griding_num``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IMAGE_WIDTH = 1280
IMAGE_HEIGHT = 720
ANCHOR_H_SAMPLES = tuple(range(160, 711, 10))  # the 56 TuSimple rows the anchors stand on
NO_POINT = -2


def anchor_rows(num_rows: int) -> tuple[int, ...]:
    """Image rows (in the 720-high frame) of ``num_rows`` anchors spread evenly over the TuSimple rows."""
    if not 1 <= num_rows <= len(ANCHOR_H_SAMPLES):
        raise ValueError(f"num_rows must be 1..{len(ANCHOR_H_SAMPLES)}, got {num_rows}")
    picks = np.linspace(0, len(ANCHOR_H_SAMPLES) - 1, num_rows).round().astype(int)
    return tuple(ANCHOR_H_SAMPLES[i] for i in picks)


def anchor_rows_in_input(num_rows: int, input_height: int) -> np.ndarray:
    """Anchor rows scaled to the model input height (UFLD's row_anchor for 288 is 64..284)."""
    return np.asarray(anchor_rows(num_rows), dtype=float) * input_height / IMAGE_HEIGHT


def order_lanes(lanes: Sequence[Sequence[int]], num_lanes: int) -> list[list[int]]:
    """Non-empty lanes left to right; when there are more than ``num_lanes``, keep those nearest the centre.

    A lane's position is its x at its lowest labelled row, where lanes are furthest apart.
    """
    def bottom_x(lane: Sequence[int]) -> float:
        valid = [x for x in lane if x >= 0]
        return float(valid[-1])

    present = [list(lane) for lane in lanes if any(x >= 0 for x in lane)]
    if len(present) > num_lanes:
        present.sort(key=lambda lane: abs(bottom_x(lane) - IMAGE_WIDTH / 2))
        present = present[:num_lanes]
    return sorted(present, key=bottom_x)


def encode_lanes(lanes: Sequence[Sequence[int]], h_samples: Sequence[int], num_rows: int,
                 num_lanes: int, griding_num: int) -> np.ndarray:
    """Class index per (anchor row, lane slot): cell of x, or ``griding_num`` where there is no point."""
    target = np.full((num_rows, num_lanes), griding_num, dtype=np.int64)
    row_of_y = {y: i for i, y in enumerate(h_samples)}
    for slot, lane in enumerate(order_lanes(lanes, num_lanes)):
        for r, y in enumerate(anchor_rows(num_rows)):
            i = row_of_y.get(y)
            if i is None:
                continue
            x = lane[i]
            if 0 <= x < IMAGE_WIDTH:
                target[r, slot] = min(int(x * griding_num / IMAGE_WIDTH), griding_num - 1)
    return target


def cell_centre_x(cells: np.ndarray, griding_num: int) -> np.ndarray:
    """Image x of a (fractional) cell index, at the cell's centre."""
    return (np.asarray(cells, dtype=float) + 0.5) * IMAGE_WIDTH / griding_num


def decode_logits(logits: np.ndarray, h_samples: Sequence[int], griding_num: int) -> list[list[int]]:
    """TuSimple lanes from one image's logits of shape (cells + 1, rows, lanes).

    As UFLD does: a row is absent where the "absent" class wins; otherwise x is the softmax
    expectation over the cells. Anchor rows map to ``h_samples`` rows they share; other rows get -2.
    Lanes with fewer than two points are dropped, as a detector would not report them.
    """
    num_cells, num_rows, num_lanes = logits.shape
    if num_cells != griding_num + 1:
        raise ValueError(f"logits have {num_cells} classes, expected griding_num + 1 = {griding_num + 1}")
    shifted = logits[:griding_num] - logits[:griding_num].max(axis=0, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=0, keepdims=True)
    expected = (probs * np.arange(griding_num)[:, None, None]).sum(axis=0)
    present = logits.argmax(axis=0) != griding_num
    xs = cell_centre_x(expected, griding_num)
    index_of_y = {y: i for i, y in enumerate(h_samples)}
    lanes = []
    for slot in range(num_lanes):
        lane = [NO_POINT] * len(h_samples)
        for r, y in enumerate(anchor_rows(num_rows)):
            i = index_of_y.get(y)
            if i is not None and present[r, slot]:
                lane[i] = int(round(xs[r, slot]))
        if sum(x >= 0 for x in lane) >= 2:
            lanes.append(lane)
    return lanes


def segmentation_mask(lanes: Sequence[Sequence[int]], h_samples: Sequence[int], num_lanes: int,
                      height: int, width: int, thickness: int = 1) -> np.ndarray:
    """Lane mask for the auxiliary branch: 0 background, slot + 1 on each lane's polyline."""
    mask = np.zeros((height, width), dtype=np.uint8)
    sx, sy = width / IMAGE_WIDTH, height / IMAGE_HEIGHT
    for slot, lane in enumerate(order_lanes(lanes, num_lanes)):
        pts = [(x * sx, y * sy) for x, y in zip(lane, h_samples) if x >= 0]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            n = int(max(abs(x1 - x0), abs(y1 - y0))) + 2
            cols = np.clip(np.linspace(x0, x1, n).round().astype(int), 0, width - 1)
            rows = np.clip(np.linspace(y0, y1, n).round().astype(int), 0, height - 1)
            for d in range(-(thickness // 2), thickness - thickness // 2):
                mask[rows, np.clip(cols + d, 0, width - 1)] = slot + 1
    return mask
