"""The reviewer's summary: its headline, its verdict table read back with a Markdown parser, both sides'
curves, what moved most, and GitHub's comment limit."""
from markdown_it import MarkdownIt

from lanemodel.analysis.gate import GateResult, GateSettings, GateVerdict
from lanemodel.analysis.outcome import Comparison, SuiteOutcome
from lanemodel.outputs.summary import MAX_CHARS, headline, summary_markdown


def verdict(ws: int, metric: str, said: str, ratio: float, policy: str = "tuned") -> GateVerdict:
    return GateVerdict("b", policy, ws, metric, 0.2, 0.2 * ratio, ratio, ratio - 0.03, ratio + 0.03, 0.004, 0.0125,
                       1.03, (8, 8), said)


def curve(step1: float, step2: float, compute2: float) -> dict:
    """A saved curve (analysis_json form) at world sizes 1 and 2; ws2's compute takes compute2 s of a step."""
    def point(ws, step, speedup):
        return {"world_size": ws, "step_time": {"point": step, "low": step, "high": step},
                "speedup": {"point": speedup, "low": speedup, "high": speedup},
                "efficiency": {"point": speedup / ws, "low": 0, "high": 1}, "samples_per_second": 16 / step,
                "oversubscribed": False, "reference_world_size": 1}

    def parts(step, compute):
        rest = step - compute
        return {"step_time": step, "shares": {"compute": compute / step, "optimizer": 0.0,
                                              "communication": rest / step, "data": 0.0, "wait": 0.0, "other": 0.0}}
    return {"tuned": {"curve": [point(1, step1, 1.0), point(2, step2, step1 / step2)],
                      "breakdown": {"1": parts(step1, step1), "2": parts(step2, compute2)}}}


def outcome_of(*verdicts: GateVerdict, partial=()) -> SuiteOutcome:
    found = SuiteOutcome({}, {}, GateResult(list(verdicts), []), GateSettings(), "main (abc1234def), interleaved")
    found.comparison = Comparison("main@abc1234", "REF", "--scaling-ab main", curve(0.20, 0.12, 0.08))
    found.partial = list(partial)
    return found


def tables(text: str) -> list[list[list[str]]]:
    """Every table of the Markdown text as rows of cell texts (header row first), by markdown-it's tokens."""
    found, row, cell = [], None, None
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        if token.type == "table_open":
            found.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            found[-1].append(row)
        elif token.type == "inline" and row is not None and cell:
            row.append(token.content)
        cell = token.type in ("th_open", "td_open")
    return found


def test_the_headline_names_the_regressed_world_size_with_its_ratio_and_interval():
    regressed = outcome_of(verdict(1, "step_time_ratio", "pass", 1.0), verdict(2, "step_time_ratio", "regressed", 1.08))
    assert headline(regressed) == "REGRESSED: 2 processes' step time x1.08 [1.05, 1.11] against main@abc1234"
    calm = outcome_of(verdict(1, "step_time_ratio", "pass", 1.0), verdict(2, "step_time_ratio", "inconclusive", 1.02),
                      verdict(2, "efficiency_ratio", "inconclusive", 0.99))
    assert headline(calm) == "no regression, 2 inconclusive (3 verdicts) against main@abc1234"
    assert headline(outcome_of(partial=["interrupted"])).startswith("PARTIAL RUN, ")
    assert headline(None).startswith("NOTHING MEASURED")


def test_the_verdict_table_reads_back_as_the_verdicts():
    verdicts = [verdict(1, "step_time_ratio", "pass", 1.004), verdict(2, "step_time_ratio", "regressed", 1.9),
                verdict(2, "efficiency_ratio", "inconclusive", 0.97)]
    text = summary_markdown(outcome_of(*verdicts), curve(0.4, 0.24, 0.18), "pytest benchmarks/ --scaling-ab main")
    header, *rows = tables(text)[0]
    assert header[:4] == ["processes", "threads", "metric", "verdict"]
    read = [(int(r[0]), r[1], r[2], r[3].strip("*").lower(), float(r[4])) for r in rows]
    assert read == [(v.world_size, v.policy, {"step_time_ratio": "step time", "efficiency_ratio": "parallel efficiency"}
                     [v.metric], v.verdict, round(v.ratio, 3)) for v in verdicts]
    assert "**REGRESSED: 2 processes' step time x1.90 [1.87, 1.93] against main@abc1234**" in text


def test_both_sides_curves_and_what_moved_most():
    text = summary_markdown(outcome_of(verdict(2, "step_time_ratio", "regressed", 2.0)), curve(0.4, 0.24, 0.18),
                            "pytest benchmarks/ --scaling-ab main", plot_link="results/plots/tuned/speedup.png")
    speedups = tables(text)[1]
    assert speedups[1][:5] == ["1", "1.00", "1.00", "0.200", "0.400"]
    assert speedups[2][:5] == ["2", "1.67", "1.67", "0.120", "0.240"]
    assert "```mermaid\nxychart-beta" in text and "line [1.000, 1.667]" in text
    moved = tables(text)[2]
    # ws1 compute went 0.2 -> 0.4 s (+0.2), ws2 compute 0.08 -> 0.18 (+0.1): the largest first
    assert [row[:3] for row in moved[1:3]] == [["1", "tuned", "compute"], ["2", "tuned", "compute"]]
    assert moved[1][5] == "+0.2000"
    assert "pytest benchmarks/ --scaling-ab main" in text and "results/plots/tuned/speedup.png" in text


def test_many_verdicts_stay_under_the_comment_limit():
    many = [verdict(ws, "step_time_ratio", "pass", 1.0, policy=f"policy{p}") for p in range(150) for ws in range(1, 9)]
    text = summary_markdown(outcome_of(*many), curve(0.4, 0.24, 0.18), "pytest benchmarks/")
    assert len(text) <= MAX_CHARS and text.startswith("## DDP scaling gate\n\n**no regression")
