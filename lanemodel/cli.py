"""``python -m lanemodel``: presets, synth, evaluate, train, sweep, and the rank entry point."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .config import TrainConfig

USAGE_ERROR = 2


class UsageError(ValueError):
    """Bad input found before any work started; reported with exit code 2."""


def parse_world_sizes(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError(f"--world-sizes is empty ({text!r}); give e.g. 1,2,4")
    sizes = []
    for part in parts:
        try:
            size = int(part)
        except ValueError:
            raise UsageError(f"--world-sizes: {part!r} is not a whole number") from None
        if size < 1:
            raise UsageError(f"--world-sizes: {size} is not a valid world size (must be >= 1)")
        sizes.append(size)
    return sizes


def writable_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(f"output directory {path} is not writable: {exc.strerror or exc}") from None
    return out


def existing_data_dir(path: str) -> Path:
    data = Path(path)
    if not data.is_dir():
        raise UsageError(f"data directory {path} does not exist")
    return data


def add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny", help="model preset: tiny, small or full")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--one-epoch", action="store_true", help="one pass over the data instead of --steps")
    parser.add_argument("--batch", type=int, default=8, help="global batch (strong) or per-rank batch (weak)")
    parser.add_argument("--aux", action="store_true", help="train the auxiliary segmentation branch")
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--adam-impl", choices=("loop", "foreach", "fused"), default=TrainConfig.adam_impl,
                        help="Adam implementation: per-tensor loop, foreach, or the fused CPU kernel")
    ddp = parser.add_argument_group("performance levers (DDP ones are ignored by one-process training)")
    ddp.add_argument("--bucket-cap-mb", type=float, default=TrainConfig.bucket_cap_mb, help="gradient bucket size")
    ddp.add_argument("--no-bucket-view", action="store_true", help="turn off gradient_as_bucket_view")
    ddp.add_argument("--static-graph", action="store_true")
    ddp.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    ddp.add_argument("--no-comm-timing", action="store_true", help="no communication hook: plain DDP all-reduce")


def training_config(args: argparse.Namespace, data_dir: Path, scaling: str = "strong") -> TrainConfig:
    from .model import get_preset

    try:
        get_preset(args.preset)
        return TrainConfig(data_dir=str(data_dir), preset=args.preset, steps=args.steps, one_epoch=args.one_epoch,
                           scaling=scaling, global_batch=args.batch, rank_batch=args.batch, use_aux=args.aux,
                           lr=args.lr, seed=args.seed, adam_impl=args.adam_impl, bucket_cap_mb=args.bucket_cap_mb,
                           gradient_as_bucket_view=not args.no_bucket_view, static_graph=args.static_graph,
                           channels_last=args.channels_last, instrument_comm=not args.no_comm_timing)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_presets(args: argparse.Namespace) -> int:
    from .model import PRESETS, LaneNet, gradient_bytes, parameter_count

    print(f"{'preset':<8}{'input (HxW)':>14}{'parameters':>14}{'gradient MB':>13}")
    for name, spec in PRESETS.items():
        model = LaneNet(spec)
        print(f"{name:<8}{spec.input_height:>8}x{spec.input_width:<5}{parameter_count(model):>14,}"
              f"{gradient_bytes(model) / 1e6:>13.1f}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .synth import write_synthetic_dataset

    try:
        paths = write_synthetic_dataset(args.out, frames=args.frames, seed=args.seed, test_frames=args.test_frames)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvaluationError, evaluate_files, official_json

    try:
        result = evaluate_files(args.pred, args.gt)
    except (EvaluationError, OSError) as exc:
        raise UsageError(str(exc)) from None
    print(official_json(result))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from .machine import machine_info
    from .model import gradient_bytes, parameter_count
    from .predict import score_model
    from .train import RankContext, build_model, train

    data_dir = existing_data_dir(args.data)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = training_config(args, data_dir)
    scores = {}
    with tempfile.TemporaryDirectory() as predictions:
        if args.evaluate:
            untrained, _ = build_model(cfg, RankContext())
            scores["untrained"] = score_model(untrained, data_dir, Path(predictions) / "untrained.json")
        result = train(cfg, RankContext())
        if args.evaluate:
            scores["trained"] = score_model(result.model, data_dir, Path(predictions) / "trained.json")
    doc = {"config": {**json.loads(cfg.to_json()), "world_size": 1, "intra_op_threads": torch.get_num_threads(),
                      "parameters": parameter_count(result.model), "gradient_bytes": gradient_bytes(result.model)},
           "env": machine_info(), "scores": scores,
           "records": [dataclasses.asdict(r) for r in result.records]}
    if args.metrics_out:
        Path(args.metrics_out).write_text(json.dumps(doc, indent=1))
    losses = [r.loss for r in result.records]
    times = sorted(r.step_time for r in result.records)
    print(f"{len(losses)} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}, median step {times[len(times) // 2]:.3f} s "
          f"({torch.get_num_threads()} threads)")
    for name, score in scores.items():
        print(f"{name}: Accuracy {score['Accuracy']:.4f} FP {score['FP']:.4f} FN {score['FN']:.4f}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .launcher import LaunchError
    from .sweep import SweepError, run_sweep
    from .synth import write_synthetic_dataset
    from .threads import parse_policy

    world_sizes = parse_world_sizes(args.world_sizes)
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    try:
        policy = parse_policy(args.threads)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = writable_dir(args.out)
    data_dir = existing_data_dir(args.data) if args.data else None
    cfg = training_config(args, data_dir or out / "data", args.scaling)
    for ws in world_sizes:
        try:
            cfg.rank_batch_size(ws)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if data_dir is None:
        print(f"synthesizing {args.frames} frames into {out / 'data'}")
        write_synthetic_dataset(out / "data", frames=args.frames, seed=args.seed)
    try:
        run_sweep(cfg, world_sizes, policy, out, args.timeout, args.drop_warmup, spawn=args.spawn)
    except (SweepError, LaunchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out / 'summary.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lanemodel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("presets", help="parameter count and input size of each preset").set_defaults(run=cmd_presets)

    synth = sub.add_parser("synth", help="write a synthetic TuSimple-format data set")
    synth.add_argument("--out", required=True)
    synth.add_argument("--frames", type=int, default=64)
    synth.add_argument("--test-frames", type=int, default=0)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=cmd_synth)

    evaluate = sub.add_parser("evaluate", help="official TuSimple Accuracy, FP, FN")
    evaluate.add_argument("--pred", required=True)
    evaluate.add_argument("--gt", required=True)
    evaluate.set_defaults(run=cmd_evaluate)

    train = sub.add_parser("train", help="train in this one process (no DDP)")
    train.add_argument("--data", required=True)
    add_training_options(train)
    train.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: library default)")
    train.add_argument("--metrics-out", help="write config and per-step records as JSON here")
    train.add_argument("--evaluate", action="store_true", help="score untrained and trained model on test_label.json")
    train.set_defaults(run=cmd_train)

    sweep = sub.add_parser("sweep", help="DDP training at each world size, per-step metrics per configuration")
    sweep.add_argument("--world-sizes", default="1,2,4")
    add_training_options(sweep)
    sweep.add_argument("--threads", default="tuned", help="naive, tuned or a thread count per rank")
    sweep.add_argument("--scaling", choices=("strong", "weak"), default="strong")
    sweep.add_argument("--data", help="TuSimple-format data set (default: synthesize one)")
    sweep.add_argument("--frames", type=int, default=64, help="frames to synthesize when --data is not given")
    sweep.add_argument("--timeout", type=float, default=600.0, help="seconds per world size before it is killed")
    sweep.add_argument("--drop-warmup", type=int, default=2, help="first steps left out of the statistics")
    sweep.add_argument("--spawn", choices=("fresh", "forkserver"), default="forkserver",
                       help="start ranks as fresh interpreters, or fork them from a server with torch imported")
    sweep.add_argument("--out", required=True)
    sweep.set_defaults(run=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["rank"]:
        from .rank import main as rank_main
        return rank_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
