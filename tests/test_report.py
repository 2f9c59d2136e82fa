"""Tests for REPORT.md: its numbers are recomputed here from the metrics documents, not read back."""
import dataclasses
import re

import numpy as np
import pytest
from test_breakdown import make_raw

from lanemodel.analysis.costmodel import holdout_error
from lanemodel.analysis.curve import analyse, thread_contention
from lanemodel.analysis.gate import GateResult, GateSettings, GateVerdict
from lanemodel.analysis.launchstats import median_precision
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.analysis.scaling import CAUSES
from lanemodel.outputs.report import report_markdown, write_report
from lanemodel.records import Launch, by_policy

CORES = 2
STEPS = 6
WARMUP = 1
BATCH = 8  # make_doc's global batch
# (policy, world size) -> compute s, all-reduce s, exposed all-reduce s per step; wall time of launch 0.
PLAN = {
    ("tuned", 1): (1.0, 0.0, 0.0, 20.0),
    ("tuned", 2): (0.5, 0.1, 0.04, 12.0),
    ("tuned", 4): (0.3, 0.2, 0.1, 11.0),
    ("naive", 1): (1.0, 0.0, 0.0, 21.0),
    ("naive", 2): (1.2, 0.15, 0.08, 30.0),
    ("naive", 4): (2.0, 0.3, 0.2, 45.0),
}
DATA = 0.01
STRAGGLER_EXTRA = 0.02  # the last rank is this much slower in every step


def launch(policy: str, world_size: int, index: int) -> Launch:
    """A launch with per-step and per-launch jitter, a slow first step and a slow last rank."""
    compute, comm, exposed, wall = PLAN[(policy, world_size)]
    steps = []
    for step in range(STEPS):
        scale = (1.0 + 0.03 * index) * (1.0 + 0.01 * step) * (3.0 if step < WARMUP else 1.0)
        ranks = []
        for rank in range(world_size):
            forward, optimizer = 0.3 * compute * scale, 0.2 * compute * scale
            backward = (0.5 * compute + exposed) * scale
            extra = STRAGGLER_EXTRA if world_size > 1 and rank == world_size - 1 else 0.0
            ranks.append({"step_time": DATA + forward + backward + optimizer + extra, "forward_time": forward,
                          "backward_time": backward, "optimizer_time": optimizer, "data_time": DATA,
                          "comm_time": comm * scale, "comm_exposed_time": exposed * scale})
        steps.append(ranks)
    intra = None if policy == "naive" else max(1, CORES // world_size)
    threads_used = world_size * (CORES if intra is None else intra)
    doc = make_raw(steps, warmup=WARMUP, oversubscribed=threads_used > CORES, wall_time=wall + index)
    doc["config"].update(threads=policy, preset="tiny")
    doc["env"].update(cores_available=CORES, logical_cores=CORES,
                      thread_plans=[{"intra_op": intra} for _ in range(world_size)])
    return Launch.from_dict(doc)


def make_config(**overrides) -> dict:
    return {"cpu_model": "Test CPU 9000", "cores_available": CORES, "physical_cores": CORES, "logical_cores": CORES,
            "torch": "2.0",
            "preset": "tiny", "scaling": "strong", "global_batch": BATCH, "steps": STEPS, "drop_warmup": WARMUP,
            "threads": ["tuned", "naive"], "world_sizes": [1, 2, 4], "rounds": 2, "inject_comm_delay_ms": 0.0,
            **overrides}


def outcome_of(config: dict, analysis: dict, docs: dict, gate: GateResult | None = None, baseline: str = "",
               files: dict | None = None) -> SuiteOutcome:
    return SuiteOutcome(config, analysis, gate, GateSettings(), baseline,
                        thread_contention(by_policy(docs), n_boot=200), files or {})


@pytest.fixture(scope="module")
def docs() -> dict:
    return {key: [launch(*key, index) for index in range(2)] for key in PLAN}


@pytest.fixture(scope="module")
def analysis(docs):
    return analyse(docs, n_boot=200)


@pytest.fixture(scope="module")
def report(docs, analysis, tmp_path_factory) -> str:
    outcome = outcome_of(make_config(), analysis, docs)
    return report_markdown(outcome, docs, tmp_path_factory.mktemp("results"))


def kept_run_times(launches: list[Launch]) -> list[float]:
    return [t for d in launches for step, t in d.run_step_times.items() if step >= d.warmup_steps_dropped]


def median_step(launches: list[dict]) -> float:
    return float(np.median(kept_run_times(launches)))


def section(text: str, heading: str) -> str:
    """Text from a '## heading' to the next '## ' heading."""
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def table_rows(text: str, heading: str, policy: str | None = None) -> dict[str, list[str]]:
    """Rows of a section's first table (under '### `policy` threads' if given), keyed by their first cell."""
    part = section(text, heading)
    if policy is not None:
        part = part[part.index(f"### `{policy}` threads"):]
    rows = {}
    for line in part.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows.setdefault(cells[0], cells)
        elif rows and not line.startswith("|"):
            break
    return rows


def test_answer_names_the_fastest_world_size_with_its_throughput(docs, report):
    answer = report[: report.index("## Machine")]
    for policy in ("tuned", "naive"):
        medians = {ws: median_step(launches) for (p, ws), launches in docs.items() if p == policy}
        fastest = min(medians, key=medians.get)
        noun = "process" if fastest == 1 else "processes"
        assert f"With **{policy}** threads the fastest was **{fastest} {noun}**: " \
               f"{BATCH / medians[fastest]:.1f} samples/s" in answer
    assert "With **tuned** threads the fastest was **4 processes**" in answer
    assert "More processes did not help" in answer  # naive: one process wins


def test_scaling_table_rows_equal_medians_of_the_documents(docs, report):
    for policy in ("tuned", "naive"):
        rows = table_rows(report, "Scaling per thread policy", policy)
        assert sorted(rows) == ["1", "2", "4", "processes"]
        for ws in (1, 2, 4):
            launches = docs[(policy, ws)]
            row = rows[str(ws)]
            spread = median_precision([d.kept_step_times for d in launches])
            assert row[1] == f"2, ±{spread:.1%}, few"        # 2 launches: fewer than FEW_LAUNCHES
            assert row[2] == f"{np.mean([d.wall_time for d in launches]):.3f}"
            assert row[3].startswith(f"{median_step(launches):.3f} [")
            assert row[4] == f"{BATCH / median_step(launches):.1f}"
            reference = median_step(docs[(policy, 1)])
            assert row[5].startswith(f"{reference / median_step(launches):.2f} [")
            assert row[6].startswith(f"{reference / median_step(launches) / ws:.2f} [")


def test_oversubscribed_rows_are_labelled_not_hidden(report):
    flags = {policy: {ws: row[-1] for ws, row in table_rows(report, "Scaling per thread policy", policy).items()
                      if ws != "processes"} for policy in ("tuned", "naive")}
    assert flags == {"tuned": {"1": "no", "2": "no", "4": "yes"}, "naive": {"1": "no", "2": "yes", "4": "yes"}}
    assert "Oversubscribed rows ran more busy threads than cores" in report


def test_karp_flatt_column_is_the_serial_fraction_of_the_measured_speedup(docs, report):
    rows = table_rows(report, "Scaling per thread policy", "tuned")
    speedup = median_step(docs[("tuned", 1)]) / median_step(docs[("tuned", 4)])
    assert rows["4"][7] == f"{(1 / speedup - 1 / 4) / (1 - 1 / 4):.3f}"
    assert rows["1"][7] == "n/a"


def test_naive_over_tuned_ratio_per_world_size(docs, report):
    rows = table_rows(report, "Thread contention")
    for ws in (2, 4):
        ratio = median_step(docs[("naive", ws)]) / median_step(docs[("tuned", ws)])
        assert rows[str(ws)][1] == f"{median_step(docs[('tuned', ws)]):.3f}"
        assert rows[str(ws)][3].startswith(f"{ratio:.2f} [")
        assert rows[str(ws)][4] == f"library-default threads are {ratio:.2f} times slower at {ws} processes"
    assert rows["1"][4] == "no clear difference at 1 process (the interval includes 1)"


def test_contention_section_needs_both_policies(docs, analysis, tmp_path):
    tuned_only = {"tuned": analysis["tuned"]}
    tuned_docs = {key: value for key, value in docs.items() if key[0] == "tuned"}
    text = report_markdown(outcome_of(make_config(threads=["tuned"]), tuned_only, tuned_docs), docs, tmp_path)
    assert "## Thread contention" not in text


CHANGE = re.compile(r"From (\d+) to (\d+) processes the mean step (grew|shrank) by ([0-9.]+) s .*?: (.*)\.$")


def test_change_explanations_add_up_to_the_measured_step_time_change(docs, report):
    for policy in ("tuned", "naive"):
        part = section(report, "What the step time is made of")
        part = part[part.index(f"### `{policy}` threads"):].split("### ")[1]
        changes = [CHANGE.search(line) for line in part.splitlines() if line.startswith("- From")]
        assert [(m.group(1), m.group(2)) for m in changes] == [("1", "2"), ("2", "4")]
        for match in changes:
            before, after = (np.mean(kept_run_times(docs[(policy, int(ws))])) for ws in match.group(1, 2))
            sign = 1.0 if match.group(3) == "grew" else -1.0
            change = sign * float(match.group(4))
            assert change == pytest.approx(after - before, abs=5e-4)
            causes = [float(x) for x in re.findall(r" ([+-][0-9.]+) s", match.group(5))]
            assert len(causes) == len(CAUSES)
            assert sum(causes) == pytest.approx(change, abs=len(CAUSES) * 5e-4 + 5e-4)
    assert "From 1 to 2 processes the mean step shrank by" in report


def test_cause_table_reports_all_reduce_overlap_and_the_straggler(report):
    rows = table_rows(report, "What the step time is made of", "tuned")
    header = rows["processes"]
    row4 = dict(zip(header, rows["4"]))
    assert row4["overlapped with backward"] == f"{100 * (1 - 0.1 / 0.2):.1f}%"
    assert row4["straggler"] == "rank 3 (slowest in 100.0% of steps)"
    assert row4["median skew s"] == f"{STRAGGLER_EXTRA:.3f}"
    assert dict(zip(header, rows["1"]))["overlapped with backward"] == "n/a"  # no all-reduce time at all


def test_model_held_out_error_is_recomputed_from_the_records(docs, report):
    """The held-out numbers come from a fit on medians and all-reduce times computed here from the records."""
    part = section(report, "Scaling model")
    for policy in ("tuned", "naive"):
        sizes = [1, 2, 4]
        medians = [float(np.median(kept_run_times(docs[(policy, ws)]))) for ws in sizes]
        comms = [float(np.mean([np.mean([r.comm_time for r in launch.kept_records if r.step == step])
                                for launch in docs[(policy, ws)] for step in launch.kept_steps])) for ws in sizes]
        threads = {ws: CORES if policy == "naive" else max(1, CORES // ws) for ws in sizes}
        holdout = holdout_error(sizes, medians, comms, 4_000_000, CORES, threads, held_out=4)
        own = part[part.index(f"### `{policy}` threads"):]
        assert (f"fitted without 4 processes, the prediction is {holdout['predicted']:.3f} s per step against "
                f"{holdout['measured']:.3f} s measured, a relative error of {100 * holdout['relative_error']:+.1f}%"
                in own)
    assert "prediction: step s" in part


def test_multi_node_rows_are_the_fitted_models_own_predictions(analysis, report):
    part = section(report, "Scaling model")
    for policy in ("tuned", "naive"):
        fitted = analysis[policy].model
        own = part[part.index(f"### `{policy}` threads"):].split("### ")[1]
        rows = [line for line in own.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()
                and len(line.split("|")) == 7]
        assert len(rows) == 3
        for row, nodes in zip(rows, (2, 4, 8)):
            cells = [c.strip() for c in row.strip("|").split("|")]
            world = fitted.best_world_size_here * nodes
            cluster = dataclasses.replace(fitted.model, cores=CORES * nodes)
            predicted = cluster.predict(world, beta=1.25e9)
            assert cells[:3] == [str(nodes), str(world), "1.25"]
            assert cells[3] == f"{predicted:.3f}"
            assert cells[4] == f"{fitted.model.predict(fitted.best_world_size_here) / predicted:.2f}"


def test_model_note_replaces_the_model_when_it_cannot_be_fitted(docs, tmp_path):
    single = {key: launches for key, launches in docs.items() if key == ("tuned", 1)}
    outcome = outcome_of(make_config(threads=["tuned"], world_sizes=[1]), analyse(single, n_boot=50), single)
    text = report_markdown(outcome, single, tmp_path)
    assert "No model: needs at least two instrumented world sizes" in text


def test_plot_links_are_relative_and_point_at_existing_files(docs, analysis, tmp_path):
    written = tmp_path / "plots" / "tuned" / "speedup_vs_processes.png"
    written.parent.mkdir(parents=True)
    written.write_bytes(b"png")
    files = {"plot tuned speedup": str(written), "plot tuned loss": str(tmp_path / "plots" / "tuned" / "gone.png")}
    text = report_markdown(outcome_of(make_config(), analysis, docs, files=files), docs, tmp_path)
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert links == ["plots/tuned/speedup_vs_processes.png"]
    assert all((tmp_path / link).is_file() for link in links)
    assert "missing, expected at" in text


def verdict(ws: int, metric: str, ratio: float, limit: float, word: str) -> GateVerdict:
    return GateVerdict(f"test_ddp_scaling[tuned-ws{ws}]", "tuned", ws, metric, 0.5, 0.5 * ratio, ratio,
                       ratio - 0.05, ratio + 0.05, 0.001 if word == "regressed" else 0.4, 0.01, limit, (5, 20), word)


def test_gate_table_only_when_there_is_a_baseline(docs, analysis, report, tmp_path):
    assert "## Regression gate" not in report
    verdicts = [verdict(2, "step_time_ratio", 1.3, 1.1, "regressed"), verdict(4, "step_time_ratio", 1.0, 1.1, "pass")]
    gate = GateResult(verdicts, ["world size 8 (tuned) is only in the baseline, so it is not gated"])
    text = report_markdown(outcome_of(make_config(), analysis, docs, gate, "base.json"), docs, tmp_path)
    part = section(text, "Regression gate")
    assert "Baseline: `base.json`." in part and "at most 1.10" in part
    assert ("| 2 | tuned | median step time, current / baseline | 0.500 | 0.650 | 1.30 [1.25, 1.35] | 0.001 | "
            "5 / 20 | 1.10 | **REGRESSED** |") in part
    assert ("| 4 | tuned | median step time, current / baseline | 0.500 | 0.500 | 1.00 [0.95, 1.05] | 0.4 | "
            "5 / 20 | 1.10 | PASS |") in part
    assert "- world size 8 (tuned) is only in the baseline, so it is not gated" in part
    assert "1 of 2 comparisons regressed." in part
    assert "--scaling-baseline base.json" in text


def test_gate_that_compared_nothing_says_so(docs, analysis, tmp_path):
    gate = GateResult([], [], refused="the baseline and this run share no (threads, world size)")
    text = report_markdown(outcome_of(make_config(), analysis, docs, gate, "base.json"), docs, tmp_path)
    assert "Nothing was compared: the baseline and this run share no" in section(text, "Regression gate")
    assert "No regression." not in text


def test_configuration_and_reproduction_come_from_the_config(docs, analysis, tmp_path):
    config = make_config(inject_comm_delay_ms=300.0)
    text = report_markdown(outcome_of(config, analysis, docs), docs, tmp_path)
    assert "injected communication delay: 300 ms" in text
    assert (f"python -m pytest benchmarks/ --world-sizes 1,2,4 --threads tuned,naive --preset tiny --scaling strong "
            f"--global-batch {BATCH} --steps {STEPS} --drop-warmup {WARMUP} --rounds 2 --results-dir {tmp_path} "
            f"--inject-comm-delay-ms 300") in text
    assert "[metrics_naive_ws4_launch1.json](metrics_naive_ws4_launch1.json)" in text


def test_failed_launch_is_listed_but_not_counted(docs, tmp_path):
    failed = dataclasses.replace(docs[("tuned", 2)][0], error="rank 1 died")
    with_failure = {**docs, ("tuned", 2): docs[("tuned", 2)] + [failed]}
    outcome = outcome_of(make_config(), analyse(with_failure, n_boot=50), with_failure)
    text = report_markdown(outcome, with_failure, tmp_path)
    assert "metrics_tuned_ws2_launch2.json) (failed: rank 1 died)" in text
    assert table_rows(text, "Scaling per thread policy", "tuned")["2"][1].startswith("2, ")


def test_write_report_saves_the_markdown(docs, analysis, tmp_path):
    outcome = outcome_of(make_config(), analysis, docs)
    path = write_report(outcome, docs, tmp_path)
    assert path == tmp_path / "REPORT.md"
    assert path.read_text() == report_markdown(outcome, docs, tmp_path)
    assert path.stat().st_size > 1000


def test_claims_section_gives_every_claim_a_verdict_from_the_run(docs, report):
    rows = table_rows(report, "The study's claims, measured", "tuned")
    verdicts = {claim.split(" ")[0]: cells[2] for claim, cells in rows.items() if claim != "claim"}
    assert len(verdicts) == 8
    ratio = median_step(docs[("tuned", 2)]) / median_step(docs[("tuned", 4)])     # same global batch
    sweet = rows["4 processes is the sweet spot, about 2x faster than 2"]
    # 4 tuned ranks on 2 cores oversubscribe them: a claim about a core per rank is not testable here
    assert f"4 processes train {ratio:.2f}x the samples per second of 2" in sweet[1]
    assert "need at least 4 cores (one per rank) to test it, and this run had 2 cores" in sweet[1]
    assert sweet[2] == "not measurable here"
    assert verdicts["communication"] == "supported"        # 0.1 s of 0.43 s exposed at 4 ranks
    assert verdicts["load"] == "supported" and "rank 3 was the straggler" in rows[next(
        c for c in rows if c.startswith("load"))][1]
    for claim in ("memory", "processes", "smaller", "context"):
        assert verdicts[claim] == "not measurable here", claim      # no probes, no counters, no CPU fields


def test_the_sweet_spot_is_judged_where_4_processes_have_a_core_each(analysis):
    import dataclasses

    from lanemodel.analysis.claims import REFUTED, sweet_spot

    a = analysis["tuned"]
    roomy = dataclasses.replace(a, cores=8, points=[dataclasses.replace(p, oversubscribed=False) for p in a.points])
    claim = sweet_spot(roomy)
    assert claim.verdict == REFUTED and "need at least 4 cores" not in claim.evidence     # 1.3x, not 2x


def test_the_machine_section_gives_each_world_sizes_launches(docs, analysis, tmp_path):
    outcome = outcome_of(make_config(rounds=1), analysis, docs)
    machine = section(report_markdown(outcome, docs, tmp_path), "Machine and configuration")
    assert ("- launches per world size: 2 / 2 / 2 at 1 / 2 / 4 processes (`naive`); 2 / 2 / 2 at 1 / 2 / 4 "
            "processes (`tuned`) (launches, not steps") in machine                   # not --rounds' 1


def test_probes_settle_the_batch_and_bandwidth_claims(docs, analysis):
    from lanemodel.analysis.claims import Probes, assess

    one = analysis["tuned"].point_at(1).step_time.point              # 2 threads at 1 process
    probes = Probes(rank_alone={"tuned": {2: 1.2 * one, 4: 0.5 * one}}, rank_threads={"tuned": {2: 1, 4: 1}},
                    bandwidth={1: {"mean_per_process_gbs": 30.0, "total_gbs": 30.0, "shares_cores": False},
                               2: {"mean_per_process_gbs": 20.0, "total_gbs": 40.0, "shares_cores": False},
                               4: {"mean_per_process_gbs": 10.0, "total_gbs": 40.0, "shares_cores": True}})
    claims = {c.claim.split(" ")[0]: c for c in assess(analysis["tuned"], probes)}
    batches = claims["smaller"]
    # 2 ranks x 1.2 x one s x 1 thread against one s x 2 threads: 1.20x the core-seconds per sample
    assert "2 processes' batch needs 1.20x" in batches.evidence and "4 processes' batch needs 1.00x" in batches.evidence
    assert batches.verdict == "supported"
    memory = claims["memory"]                  # 30 -> 20 GB/s per process with a core each: 33 % less
    assert "2 processes, each on its own core, 20.0 GB/s each" in memory.evidence and memory.verdict == "supported"
    flat = Probes(bandwidth={1: {"mean_per_process_gbs": 30.0, "total_gbs": 30.0, "shares_cores": False},
                             2: {"mean_per_process_gbs": 28.0, "total_gbs": 56.0, "shares_cores": False}})
    assert {c.claim.split(" ")[0]: c for c in assess(analysis["tuned"], flat)}["memory"].verdict == "refuted"


def test_model_from_measured_parts_is_reported_row_by_row_and_saved(docs, tmp_path):
    """Probes at 2 and 4 ranks (the synthetic launches carry no CPU fields, so 1 process has no parts): both rows
    predicted from the other one's efficiency, with the microbenchmark's all-reduce beside training's span."""
    from lanemodel.analysis.claims import Probes
    from lanemodel.analysis.curve import analysis_json
    from lanemodel.analysis.outcome import summarise_session

    bench = {ws: {"gradient": {"wall": 0.1 * ws, "cpu": 0.02}, "buckets": [1000], "nodes": 1, "link_gbit": None}
             for ws in (2, 4)}
    probes = Probes(rank_alone={"tuned": {2: 0.4, 4: 0.25}}, rank_threads={"tuned": {2: 1, 4: 1}},
                    rank_alone_cpu={"tuned": {2: 0.4, 4: 0.25}},
                    allreduce={"tuned": bench})
    outcome = summarise_session(docs, make_config(), None, GateSettings(), "", n_boot=200, probes=probes)
    rows = outcome.analysis["tuned"].parts
    assert [r["world_size"] for r in rows] == [2, 4] and rows[1]["fitted_on"] == [2]
    assert rows[0]["predicted_allreduce"] == pytest.approx(0.2) and rows[0]["measured_allreduce"] is None
    saved = analysis_json(outcome.analysis)["tuned"]["model"]
    assert saved["parts"]["predictions"] == rows and "fitted_holdout" not in saved     # two sizes: no hold-out
    text = report_markdown(outcome, docs, tmp_path)
    section = text.split("## Scaling model from measured parts")[1]
    assert f"| 4 | {rows[1]['bound']} |" in section and f"{100 * rows[1]['relative_error']:+.1f}%" in section
    # the naive policy had no probes: said so, not left blank
    assert "No model from measured parts: needs the probes" in section


def test_a_partial_run_says_why_at_the_top_of_the_report(docs, analysis, tmp_path):
    outcome = outcome_of(make_config(), analysis, docs)
    assert "Partial run" not in report_markdown(outcome, docs, tmp_path)
    outcome.partial = ["interrupted (terminated by signal SIGTERM) during world size 4 (tuned), launch 2"]
    text = report_markdown(outcome, docs, tmp_path)
    banner = text.index("> **Partial run.** interrupted (terminated by signal SIGTERM) during world size 4")
    assert banner < text.index("## Machine and configuration")


def test_the_launches_section_sets_each_median_s_precision_beside_the_plan(docs, analysis, tmp_path):
    outcome = outcome_of(make_config(), analysis, docs)
    outcome.plan = {"budget_s": 240.0, "projected_s": 230.0, "session_s": 236.4, "world_sizes": [
        {"threads": "tuned", "world_size": 1, "launches": 3, "cost_s": 7.0,
         "reasons": ["its median enters every speedup"]}]}
    text = section(report_markdown(outcome, docs, tmp_path), "Launches and precision")
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| ")]
    spread = median_precision([d.kept_step_times for d in docs[("tuned", 1)]])
    assert ["1", "`tuned`", f"2, ±{spread:.1%}, few", "3", "7", "its median enters every speedup"] in rows
    unplanned = next(row for row in rows if row[:2] == ["1", "`naive`"])
    assert unplanned[3:] == ["", "", ""]            # the plan named no naive world size
    assert "Session budget 240 s" in report_markdown(outcome, docs, tmp_path)


def test_the_machine_section_names_where_its_cores_and_memory_come_from_and_what_the_session_held(docs, analysis,
                                                                                                   tmp_path):
    quota = "1 CPU: cgroup quota 100000/100000 us (1 CPU); affinity 2"
    memory = "2.6 GiB: cgroup limit 3.0 GiB (x/memory.limit_in_bytes) less 0.4 GiB in use; MemAvailable 21.9 GiB"
    outcome = outcome_of(make_config(cores_available=1, cores_source=quota, memory_source=memory), analysis, docs)
    outcome.session_rss_mb, outcome.session_private_mb = 760.0, 370.0
    machine = section(report_markdown(outcome, docs, tmp_path), "Machine and configuration")
    assert f"1 available to the run ({quota})" in machine
    assert f"- memory: {memory}" in machine
    assert ("- the session process (not a rank): up to 0.74 GiB resident as its launches ended, 0.36 GiB of it its "
            "own") in machine
    plain = section(report_markdown(outcome_of(make_config(), analysis, docs), docs, tmp_path), "Machine and "
                                                                                               "configuration")
    assert "memory:" not in plain and "session process" not in plain and f"{CORES} available to the run\n" in plain
