"""results/REPORT.md (placeholder until the full report lands)."""
from pathlib import Path


def write_report(outcome, docs, results_dir: Path) -> Path:
    path = results_dir / "REPORT.md"
    path.write_text("# DDP scaling report\n\n```\n" + "\n".join(outcome.summary_lines()) + "\n```\n")
    return path
