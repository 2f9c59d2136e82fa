"""``python -m lanemodel``: presets, synth, evaluate, train, sweep, and the rank entry point."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path

from lanemodel.settings import (
    BY_NAME,
    LANE_WORKLOAD,
    OPTIONS,
    SettingsError,
    SweepSettings,
    argparse_help,
    parse_settings,
)
from lanemodel.training.config import TrainConfig

USAGE_ERROR = 2
INTERRUPTED = 130


class UsageError(ValueError):
    """Bad input found before any work started; reported with exit code 2."""


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
    """The TrainConfig knobs (declared once there, with their help) and the shared sweep options."""
    parser.add_argument(BY_NAME["preset"].flag, default=None, help=argparse_help(BY_NAME["preset"].help))
    parser.add_argument(BY_NAME["steps"].flag, default=None, help=argparse_help(BY_NAME["steps"].help))
    parser.add_argument(BY_NAME["global_batch"].flag, default=None, help=argparse_help(BY_NAME["global_batch"].help))
    knobs = parser.add_argument_group("training knobs (DDP ones are ignored by one-process training)")
    for spec in fields(TrainConfig):
        if "help" not in spec.metadata:
            continue
        flag = "--" + spec.name.replace("_", "-")
        if isinstance(spec.default, bool):
            knobs.add_argument(flag, action=argparse.BooleanOptionalAction, default=spec.default,
                               help=argparse_help(spec.metadata["help"]))
        else:
            knobs.add_argument(flag, type=type(spec.default), default=spec.default,
                               help=argparse_help(f"{spec.metadata['help']} (default {spec.default})"))


def training_config(args: argparse.Namespace, settings: SweepSettings, world_sizes: tuple[int, ...] = (1,),
                    **fixed) -> TrainConfig:
    """The training knobs as given, refused before any launch when one cannot run: a bad value, an
    accumulation that does not split a world size's per-rank batch, a hook gloo cannot all-reduce here."""
    from lanemodel.engine.hookcheck import check_comm_hook
    from lanemodel.session.runs import train_config

    knobs = {spec.name: getattr(args, spec.name) for spec in fields(TrainConfig) if "help" in spec.metadata}
    try:
        cfg = train_config(settings, **knobs, **fixed)
        for world_size in world_sizes:
            cfg.micro_batch_size(world_size)
        check_comm_hook(cfg.comm_hook)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return cfg


TRAIN_SETTINGS = ("data", "preset", "steps", "global_batch", "inject_step_slowdown")


def settings_from(args: argparse.Namespace, names: tuple[str, ...] | None = None, sweep_defaults: bool = False,
                  **fixed: str) -> SweepSettings:
    """The shared options ``names`` (default: all) as `parse_settings` checks them; a bad value names its option.
    ``sweep_defaults``: options not given take the sweep's own default where it has one."""
    raw = {option.name: getattr(args, option.name, None) for option in OPTIONS
           if names is None or option.name in names}
    if sweep_defaults:
        raw.update({option.name: option.sweep_default for option in OPTIONS
                    if option.sweep_default is not None and raw.get(option.name) is None})
    raw.update(fixed)
    try:
        return parse_settings(raw)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def cmd_presets(args: argparse.Namespace) -> int:
    from lanemodel.training.model import PRESETS, LaneNet, gradient_bytes, parameter_count

    print(f"{'preset':<8}{'input (HxW)':>14}{'parameters':>14}{'gradient MB':>13}")
    for name, spec in PRESETS.items():
        model = LaneNet(spec)
        print(f"{name:<8}{spec.input_height:>8}x{spec.input_width:<5}{parameter_count(model):>14,}"
              f"{gradient_bytes(model) / 1e6:>13.1f}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from lanemodel.workload.synthset import write_synthetic_dataset

    try:
        paths = write_synthetic_dataset(args.out, frames=args.frames, seed=args.seed, test_frames=args.test_frames)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lanemodel.workload.evaluate import EvaluationError, evaluate_files, official_json

    try:
        result = evaluate_files(args.pred, args.gt)
    except (EvaluationError, OSError) as exc:
        raise UsageError(str(exc)) from None
    print(official_json(result))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from lanemodel.engine.machine import machine_info
    from lanemodel.training.model import gradient_bytes, parameter_count
    from lanemodel.training.predict import score_model
    from lanemodel.training.train import RankContext, build_model, train

    data_dir = existing_data_dir(args.data)
    # One process, to score the model: the frames decoded once, as the evaluation reads them.
    cfg = training_config(args, settings_from(args, TRAIN_SETTINGS, drop_warmup="0"), frames="cache")
    if args.threads:
        torch.set_num_threads(args.threads)
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
    """The same measurement session as the suite (``lanemodel.session``), driven without pytest: without --rounds,
    one launch per world size (no warm-up, no probes: the sweep's own defaults); with --rounds N or auto, the
    suite's session and defaults (auto: the plan within --scaling-session-budget-s)."""
    from lanemodel.engine.forkserver import shutdown_fork_server
    from lanemodel.engine.interrupts import terminate_as_interrupt
    from lanemodel.session.errors import SessionError
    from lanemodel.session.opening import check_launcher, check_measurable, open_session
    from lanemodel.session.runs import data_dir, synthesize_data

    settings = settings_from(args, sweep_defaults=args.rounds is None)
    try:
        check_measurable(settings)
        check_launcher(settings)
    except SessionError as exc:
        raise UsageError(str(exc)) from None
    if len(settings.launch.threads) != 1:
        raise UsageError(f"--threads: a sweep measures one policy, got {','.join(settings.launch.threads)}")
    out = writable_dir(settings.outputs.results_dir)
    cfg = training_config(args, settings, settings.launch.world_sizes)
    knobs = {spec.name: getattr(cfg, spec.name) for spec in fields(TrainConfig) if "help" in spec.metadata}
    if not settings.workload.data and settings.workload.spec == LANE_WORKLOAD:
        print(f"synthesizing {args.frames} frames into {data_dir(settings)}")
        synthesize_data(settings, frames=args.frames)
    with ExitStack() as stack:
        stack.enter_context(terminate_as_interrupt())     # SIGTERM unwinds, so ranks and namespaces go
        stack.callback(shutdown_fork_server)
        try:
            session = open_session(settings, knobs=knobs)
        except SessionError as exc:
            raise UsageError(str(exc)) from None
        stack.callback(session.close)
        return _run_sweep(session, out)


def _run_sweep(session, out: Path) -> int:
    """Each world size in the session's order, its probes after it; summary.json rewritten after each, so that
    a failure or an interruption loses nothing; then the report and the table."""
    from lanemodel.engine.sweep import summarise
    from lanemodel.outputs.table import summary_lines
    from lanemodel.session.errors import LaunchFailed, NotRun

    def write_summary() -> None:
        rows = [summarise(launch) for key in session.order for launch in session.series.get(key, [])]
        (out / "summary.json").write_text(json.dumps(rows, indent=1))

    failed = None
    try:
        for key in session.order:
            try:
                session.measure(key)
                session.probe(key)
            except NotRun:
                continue            # said on stderr and in the report; the rest of the curve stands
            finally:
                write_summary()
        if session.probes_bandwidth:
            session.measure_bandwidth()
    except LaunchFailed as exc:
        failed = str(exc)
    except KeyboardInterrupt as exc:
        session.interrupt(str(exc) or "Ctrl-C")
        session.conclude()
        raise
    outcome = session.conclude()
    for line in summary_lines(outcome) if outcome is not None else []:
        print(line)
    print(f"wrote {out / 'summary.json'}")
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        return 1
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
    slowdown = BY_NAME["inject_step_slowdown"]
    train.add_argument(slowdown.flag, default=None, help=argparse_help(slowdown.help))
    train.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: library default)")
    train.add_argument("--metrics-out", help="write config and per-step records as JSON here")
    train.add_argument("--evaluate", action="store_true", help="score untrained and trained model on test_label.json")
    train.set_defaults(run=cmd_train)

    sweep = sub.add_parser("sweep", help="DDP training at each world size, per-step metrics per configuration")
    add_training_options(sweep)
    for option in OPTIONS:
        if option.scope == "sweep" and option.name not in ("preset", "steps", "global_batch"):
            default = option.default if option.sweep_default is None else option.sweep_default
            sweep.add_argument(option.flag, default=None, help=argparse_help(f"{option.help} (default {default})"))
    sweep.add_argument("--frames", type=int, default=64, help="frames to synthesize when --data is not given")
    sweep.set_defaults(run=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["rank"]:
        from lanemodel.engine.forkserver import exit_process
        from lanemodel.engine.rank import main as rank_main
        exit_process(rank_main(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt as exc:
        print(f"interrupted{': ' + str(exc) if str(exc) else ''}; every rank was stopped, finished steps are "
              "on disk", file=sys.stderr)
        return INTERRUPTED
