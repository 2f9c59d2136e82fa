"""The lever study (``--levers SPEC``): each lever value against the default configuration, in blocks.

A block, at one world size, is one launch of the default and one of each value, in an order drawn at random
(every second block in the reverse order of the one before), all trained from the block's seed: the same
initial weights and the same samples in the same order, so that the pair's loss difference is the lever's
(``lanemodel.analysis.leverstats``). Blocks differ by seed. The values that came out faster and training
the same are then combined, the fastest per lever, and the combination is measured against the default in
blocks of its own: single-lever ratios do not multiply when the levers interact.
"""
from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from lanemodel.analysis.leverstats import fastest, predicted_ratio, row_json, side_json
from lanemodel.engine.leverspec import DEFAULT, Combination, LeverValue, predicted_bytes
from lanemodel.engine.progress import Progress
from lanemodel.records import Launch
from lanemodel.session.runs import LEVER_DIR, EngineLauncher
from lanemodel.session.session import run_config_once
from lanemodel.settings import SweepSettings

ORDER_SEED = 20             # the blocks' orders: drawn, but the same for a rerun of the same study
Side = LeverValue | Combination


@dataclass
class Block:
    """One block at one world size: its seed, the order its launches ran in, what each measured."""

    seed: int
    order: list[str]
    launches: dict[str, Launch] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class LeverStudy:
    """The study's launches and conclusions; the suite's lever items run its blocks."""

    def __init__(self, opts: SweepSettings, spec: str, values: tuple[LeverValue, ...], launcher: EngineLauncher,
                 shapes: list[tuple[int, ...]], progress: Progress | None = None):
        self.opts, self.spec, self.values, self.launcher, self.shapes = opts, spec, values, launcher, shapes
        self.progress = progress or Progress(opts.workload.steps, 1)
        self.policy = opts.launch.threads[0]
        self.blocks: dict[int, list[Block]] = {}
        self.recommended: dict[int, tuple[Combination, list[Block]]] = {}
        self._rng = random.Random(ORDER_SEED)
        self.launch_seconds = 0.0
        self.cleanup = ExitStack()          # the emulated nodes (--nodes), gone with close()
        self.config = run_config_once(opts)  # the study's set-up, for levers.json and the saved run

    def close(self) -> None:
        self.cleanup.close()

    def warm_up(self, world_size: int) -> None:
        """One short default launch before the first block, outside the statistics: the first launch of a
        session ran up to 2x slower here."""
        self._launch(Combination(), world_size, "warmup", seed=0, steps=min(self.opts.workload.steps, 3))

    def run_block(self, world_size: int, sides: Sequence[Side], blocks: list[Block]) -> Block:
        """The default and ``sides`` once each, from the next seed, in a drawn order, and the block after it in
        the reverse order (for two sides: ABBA), so that each side's place in the blocks evens out over a pair;
        failures kept as errors."""
        by_label = {DEFAULT: Combination(), **{side.label: side for side in sides}}
        order = list(by_label)
        if len(blocks) % 2:         # counterbalanced: every second block runs the one before it backwards
            order = blocks[-1].order[::-1]
        else:
            self._rng.shuffle(order)
        block = Block(seed=len(blocks), order=order)
        for label in order:
            launch, error = self._launch(by_label[label], world_size, f"b{block.seed}", block.seed)
            block.launches[label] = launch
            if error:
                block.errors[label] = error.splitlines()[0]
        blocks.append(block)
        return block

    def _launch(self, side: Side, world_size: int, tag: str, seed: int, steps: int | None = None):
        overrides = {**side.train_overrides(), "seed": seed}
        name = f"{slug(side.label)}_ws{world_size}_{tag}"
        started = time.perf_counter()
        rounds = max(self.opts.levers.blocks, seed + 1)
        with self.progress.launch(world_size, seed, rounds, warmup=steps is not None,
                                  side=f"{side.label} ") as on_step:
            found = self.launcher.launch(side.policy(self.policy), world_size, name, steps=steps, on_step=on_step,
                                         overrides=overrides, subdir=LEVER_DIR)
        self.launch_seconds += time.perf_counter() - started
        return found

    def run_values(self, world_size: int) -> Block:
        return self.run_block(world_size, self.values, self.blocks.setdefault(world_size, []))

    def recommendation(self, world_size: int) -> Combination:
        """The fastest value per lever among those faster and training the same at this world size."""
        rows = {row["label"]: row for row in self.rows(world_size)}
        best: dict[str, LeverValue] = {}
        for value in self.values:
            row = rows.get(value.label, {})
            if row.get("recommendable") and (value.lever not in best
                                             or row["ratio"] < rows[best[value.lever].label]["ratio"]):
                best[value.lever] = value
        return Combination(tuple(best[value.lever] for value in self.values if best.get(value.lever) is value))

    def run_recommended(self, world_size: int, combination: Combination) -> Block:
        _, blocks = self.recommended.setdefault(world_size, (combination, []))
        return self.run_block(world_size, [combination], blocks)

    def rows(self, world_size: int, default: dict | None = None) -> list[dict]:
        """One row per value; ``default``: the default's side_json, when the caller has it already."""
        blocks = self.blocks.get(world_size, [])
        defaults = [block.launches.get(DEFAULT) for block in blocks]
        default = side_json(finished(defaults)) if default is None else default
        rows = []
        for value in self.values:
            row = row_json(value.label, [block.launches.get(value.label) for block in blocks], defaults,
                           self.opts.levers.loss_tolerance, block_errors(blocks, value.label))
            row["predicted_bytes"] = predicted_bytes(value, self.shapes)
            row["predicted_ratio"] = predicted_ratio(default, row["predicted_bytes"])
            rows.append(row)
        return rows

    def world_size_json(self, world_size: int) -> dict:
        blocks = self.blocks.get(world_size, [])
        default = side_json(finished([block.launches.get(DEFAULT) for block in blocks]))
        found = {"default": default, "default_errors": block_errors(blocks, DEFAULT),
                 "rows": self.rows(world_size, default), "orders": [block.order for block in blocks],
                 "recommended": None}
        if world_size in self.recommended:
            combination, rec_blocks = self.recommended[world_size]
            rec = row_json(combination.label, [b.launches.get(combination.label) for b in rec_blocks],
                           [b.launches.get(DEFAULT) for b in rec_blocks], self.opts.levers.loss_tolerance,
                           block_errors(rec_blocks, combination.label))
            singles = {row["label"]: row.get("ratio") for row in found["rows"]}
            found["recommended"] = {**rec, "product_of_single_ratios": math.prod(singles[value.label]
                                                                                 for value in combination.values),
                                    "orders": [b.order for b in rec_blocks]}
        return found

    def as_json(self) -> dict:
        """Everything the report and a saved run need; world sizes as strings (JSON keys)."""
        sizes = {str(ws): self.world_size_json(ws) for ws in sorted(self.blocks)}
        return {"spec": self.spec, "policy": self.policy, "blocks": self.opts.levers.blocks,
                "loss_tolerance": self.opts.levers.loss_tolerance, "steps": self.opts.workload.steps,
                "global_batch": self.opts.workload.global_batch, "nodes": self.opts.launch.nodes,
                "link_gbit": self.opts.launch.link_gbit if self.opts.launch.nodes > 1 else None,
                "launch_seconds": round(self.launch_seconds, 1), "world_sizes": sizes, "fastest": fastest(sizes)}


def block_errors(blocks: list[Block], label: str) -> list[str]:
    """The errors of ``label``'s failed launches, named by block."""
    return [f"block {block.seed}: {block.errors[label]}" for block in blocks if label in block.errors]


def finished(launches: list[Launch | None]) -> list[Launch]:
    return [launch for launch in launches if launch is not None and launch.finished]


def slug(label: str) -> str:
    """A file-name-safe form of a lever label (``comm_hook=powersgd:1`` -> ``comm_hook-powersgd-1``)."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", label).strip("-")
