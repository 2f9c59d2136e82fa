"""Where the reviewer's summary goes (``--scaling-summary-md PATH``, and ``$GITHUB_STEP_SUMMARY`` in a GitHub
Actions job), checked before any launch, and written at the end of the session, an interrupted one too.

A path that cannot be written is refused up front (a SessionError naming it), so that a session never measures
for half an hour and then loses its summary.
"""
from __future__ import annotations

import os
from pathlib import Path

from lanemodel.analysis.curve import analysis_json
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.outputs.report import relative_to_results, reproduce_command
from lanemodel.outputs.summary import summary_markdown
from lanemodel.session.errors import SessionError
from lanemodel.settings import SweepSettings

GITHUB_SUMMARY = "GITHUB_STEP_SUMMARY"


def summary_targets(opts: SweepSettings) -> list[tuple[Path, bool]]:
    """(path, append) for every summary this session writes; refused when one cannot be written."""
    targets = []
    if opts.outputs.summary_md:
        targets.append((_writable(Path(opts.outputs.summary_md), "--scaling-summary-md"), False))
    if os.environ.get(GITHUB_SUMMARY):
        targets.append((_writable(Path(os.environ[GITHUB_SUMMARY]), f"${GITHUB_SUMMARY}"), True))
    return targets


def _writable(path: Path, name: str) -> Path:
    if path.is_dir():
        raise SessionError(f"{name} {path}: is a directory; give a file path for the summary")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SessionError(f"{name} {path}: its directory cannot be made: {exc.strerror}") from None
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise SessionError(f"{name} {path}: not writable")
    return path


def write_summaries(outcome: SuiteOutcome | None, opts: SweepSettings, targets: list[tuple[Path, bool]]) -> None:
    if not targets:
        return
    results = Path(opts.outputs.results_dir)
    current = analysis_json(outcome.analysis) if outcome is not None else {}
    plots = [path for name, path in (outcome.files.items() if outcome else []) if name.endswith(" speedup")]
    text = summary_markdown(outcome, current, reproduce_command(outcome, results) if outcome is not None
                            else f"python -m pytest benchmarks/ --results-dir {results}",
                            plot_link=", ".join(_shown(path, results) for path in plots))
    for path, append in targets:
        with path.open("a" if append else "w") as out:
            out.write(text)


def _shown(path: str, results: Path) -> str:
    """A file of the results as the reviewer finds it in the uploaded results (``results/plots/...``)."""
    inside = relative_to_results(path, results)
    return path if inside == path else str(results / inside)
