"""REF's code for same-session A/B runs: checked out beside the tree, refused when it cannot serve, removed."""
import dataclasses
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from lanemodel.engine.worktree import RefError, check_serves, checkout, differences
from lanemodel.records import READABLE_VERSIONS, SCHEMA_VERSION
from lanemodel.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"steps": 12, "preset": "tiny"}
DEFAULTS = {"steps": 12, "preset": "tiny"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def write_project(repo: Path, schema: int, fields: list[str], rank_entry: bool = True) -> None:
    """A minimal stand-in of the project at some version: what the probe looks at, and nothing else."""
    package = repo / "lanemodel"
    (package / "engine").mkdir(parents=True, exist_ok=True)
    (package / "training").mkdir(parents=True, exist_ok=True)
    for init in (package, package / "engine", package / "training"):
        (init / "__init__.py").write_text("")
    (package / "records.py").write_text(f"SCHEMA_VERSION = {schema}\n")
    rank = package / "engine" / "rank.py"
    if rank_entry:
        rank.write_text("")
    elif rank.exists():
        rank.unlink()
    body = "\n".join(f"    {name}: int = 0" for name in fields)
    (package / "training" / "config.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass TrainConfig:\n" + body + "\n")


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q")
    write_project(repo, 0, ["steps"], rank_entry=False)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "old layout")
    write_project(repo, SCHEMA_VERSION, ["steps", "preset"])
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "current layout")
    return repo


def worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_ref_is_checked_out_at_its_commit_and_removed_afterwards(repo):
    with checkout(repo, "HEAD~1") as code:
        assert code.commit == git(repo, "rev-parse", "HEAD~1")
        assert (code.path / "lanemodel" / "records.py").read_text() == "SCHEMA_VERSION = 0\n"
        assert len(worktrees(repo)) == 2
        assert code.label.startswith("HEAD~1 (") and code.commit[:12] in code.label
    assert not code.path.exists() and len(worktrees(repo)) == 1


def test_the_worktree_is_removed_when_the_block_fails(repo):
    with pytest.raises(KeyboardInterrupt), checkout(repo, "HEAD") as code:
        raise KeyboardInterrupt
    assert not code.path.exists() and len(worktrees(repo)) == 1


@pytest.mark.parametrize("ref", ["no-such-branch", "HEAD~5", "--help", ""])
def test_a_ref_that_names_no_commit_is_refused_by_name(repo, ref):
    with pytest.raises(RefError, match="--scaling-ab: .* (names no commit|is not a git ref)") as info:
        with checkout(repo, ref):
            pass
    assert repr(ref) in str(info.value)
    assert len(worktrees(repo)) == 1


def test_an_older_ref_is_refused_naming_every_difference(repo):
    with checkout(repo, "HEAD~1") as code, pytest.raises(RefError) as info:
        check_serves(code, READABLE_VERSIONS, {**CONFIG, "preset": "small"}, DEFAULTS)
    message = str(info.value)
    assert message.startswith(f"--scaling-ab {code.label} cannot run this suite's launches")
    assert "no rank entry point lanemodel.engine.rank" in message
    assert "record schema is version 0, this code reads version 1, 2, 3" in message
    assert "TrainConfig lacks preset (set to 'small' here)" in message


def test_a_ref_with_the_same_protocol_serves(repo):
    with checkout(repo, "HEAD") as code:
        served = check_serves(code, READABLE_VERSIONS, CONFIG, DEFAULTS)
    assert served.config_fields == {"steps", "preset"}


def test_an_option_ref_does_not_know_is_left_out_of_its_config_while_at_its_default(repo):
    """A knob added after REF: at its default REF's behaviour is the same, so its ranks get a config without
    it (their TrainConfig would refuse the unknown key); set to anything else, REF is refused."""
    with checkout(repo, "HEAD") as code:
        served = check_serves(code, READABLE_VERSIONS, {**CONFIG, "new_knob": 0}, {**DEFAULTS, "new_knob": 0})
        assert json.loads(served.config_json({**CONFIG, "new_knob": 0})) == CONFIG
        with pytest.raises(RefError, match="TrainConfig lacks new_knob \\(set to 3 here\\)"):
            check_serves(code, READABLE_VERSIONS, {**CONFIG, "new_knob": 3}, {**DEFAULTS, "new_knob": 0})


def test_differences_names_each_problem_alone():
    good = {"rank_entry": True, "schema_version": 2, "config_fields": ["a", "b"]}
    config, defaults = {"a": 1}, {"a": 1}
    assert differences(good, (2, 3), config, defaults) == []
    assert differences({**good, "schema_version": 4}, (2, 3), config, defaults) == [
        "its record schema is version 4, this code reads version 2, 3"]
    assert differences({**good, "config_fields": None}, (2,), config, defaults) == [
        "it has no lanemodel.training.config.TrainConfig"]
    assert differences(good, (2,), {"a": 1, "c": 2, "d": 0}, {"a": 1, "c": 0, "d": 0}) == [
        "its TrainConfig lacks c (set to 2 here)"]


def test_this_project_at_head_serves_its_own_launches():
    """The real probe, run by REF's own interpreter against this repository's HEAD."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    with checkout(ROOT, "HEAD") as code:
        config = dataclasses.asdict(TrainConfig(data_dir="data"))
        defaults = {name: f.default for name, f in TrainConfig.__dataclass_fields__.items()}
        assert check_serves(code, READABLE_VERSIONS, config, defaults).config_fields == set(config)
        probe = textwrap.dedent("""
            import lanemodel, sys
            print(lanemodel.__file__)
        """)
        done = subprocess.run([__import__("sys").executable, "-c", probe], cwd=code.path, capture_output=True,
                              text=True, timeout=60, env={"PYTHONPATH": str(code.path), "PATH": "/usr/bin:/bin"})
        assert done.stdout.strip() == str(code.path / "lanemodel" / "__init__.py")
