"""Another version of this project's code, checked out beside the working tree, for same-session A/B launches.

``checkout(repo, ref)`` puts REF in a temporary ``git worktree`` and removes it on the way out, also when
the block raises or is interrupted. Ranks of REF run from that directory (``code_dir`` of the launcher:
their working directory and import path), so they import REF's training code, never the working tree's.
Before any launch, ``check_serves`` asks REF's own interpreter what it offers and refuses a REF whose
rank entry point, record schema or training configuration cannot take this run's launches.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

GIT_TIMEOUT_S = 120
PROBE_TIMEOUT_S = 120
WORKTREE_PREFIX = "ddp-lane-bench-ref-"

# Run by REF's interpreter in REF's directory: what its rank entry point, records and config look like.
PROBE = """
import dataclasses, importlib.util, json
found = {}
try:
    found["rank_entry"] = importlib.util.find_spec("lanemodel.engine.rank") is not None
except Exception as exc:
    found["rank_entry"] = False
try:
    from lanemodel.records import SCHEMA_VERSION
    found["schema_version"] = SCHEMA_VERSION
except Exception as exc:
    found["schema_version"] = None
try:
    from lanemodel.training.config import TrainConfig
    found["config_fields"] = [f.name for f in dataclasses.fields(TrainConfig)]
except Exception as exc:
    found["config_fields"] = None
print(json.dumps(found))
"""


class RefError(RuntimeError):
    """REF cannot be checked out, or its code cannot serve this run's launches; the message says why."""


@dataclass(frozen=True)
class RefCode:
    ref: str            # as the user gave it
    commit: str         # the full commit id it resolved to
    path: Path          # the worktree directory ranks of REF run in
    config_fields: frozenset[str] | None = None    # REF's TrainConfig fields, once probed
    repo: Path | None = None                       # the repository's top directory REF was checked out of

    def config_json(self, config: dict) -> str:
        """The training config as REF's ranks read it: without the fields REF does not know (each of them at
        its default, which ``check_serves`` made sure of: that is how REF behaves anyway), and the workload
        imported from REF's tree where the working tree's run imports it from the repository."""
        keep = config if self.config_fields is None else {k: v for k, v in config.items() if k in self.config_fields}
        if keep.get("workload_dir") and self.repo is not None:
            keep = {**keep, "workload_dir": str(self.in_tree(Path(keep["workload_dir"])))}
        return json.dumps(keep, sort_keys=True)

    def in_tree(self, directory: Path) -> Path:
        """``directory`` of the repository, as the same directory in REF's worktree (outside it: unchanged)."""
        try:
            return self.path / directory.resolve().relative_to(self.repo)
        except ValueError:
            return directory

    @property
    def label(self) -> str:
        return f"{self.ref} ({self.commit[:12]})"


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S)
    except FileNotFoundError:
        raise RefError("git is not installed, so no REF can be checked out") from None
    except subprocess.TimeoutExpired:
        raise RefError(f"git {' '.join(args)} did not finish within {GIT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise RefError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def resolve_commit(repo: Path, ref: str) -> str:
    """The commit REF names in ``repo``; a RefError naming REF when it names none."""
    if not ref or ref.startswith("-"):
        raise RefError(f"--scaling-ab: {ref!r} is not a git ref")
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except RefError:
        raise RefError(f"--scaling-ab: {ref!r} names no commit of the repository at {repo}") from None


@contextmanager
def checkout(repo: str | Path, ref: str) -> Iterator[RefCode]:
    """REF in a temporary worktree of ``repo``, removed (with git's record of it) however the block ends."""
    repo = Path(_git(Path(repo), "rev-parse", "--show-toplevel"))
    commit = resolve_commit(repo, ref)
    path = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX))
    try:
        _git(repo, "worktree", "add", "--detach", "--force", str(path), commit)
        yield RefCode(ref, commit, path, repo=repo.resolve())
    finally:
        remove(repo, path)


def remove(repo: Path, path: Path) -> None:
    """Remove one worktree directory and git's entry for it; never raises (it runs on the way out)."""
    try:
        _git(repo, "worktree", "remove", "--force", str(path))
    except RefError:
        pass
    shutil.rmtree(path, ignore_errors=True)
    try:
        _git(repo, "worktree", "prune")
    except RefError:
        pass


def probe(code_dir: Path) -> dict:
    """What REF's code offers, asked of a fresh interpreter that imports REF only."""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE], cwd=code_dir, env=code_env(code_dir),
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RefError(f"REF's code at {code_dir} did not answer within {PROBE_TIMEOUT_S} s") from None
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RefError(f"REF's code at {code_dir} could not be imported:\n{done.stderr[-2000:]}") from None


def code_env(code_dir: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose ``import lanemodel`` finds the code in ``code_dir`` before any installed copy."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = str(code_dir)
    return env


def start_in_session(command: list[str], env: dict[str, str], log: Path,
                     code: RefCode | None = None) -> subprocess.Popen:
    """``command`` leading a session of its own (killed with everything it starts), its output in ``log``;
    with ``code``, run from that version's directory and importing its ``lanemodel``."""
    with log.open("w") as out:
        return subprocess.Popen(command, env=env if code is None else code_env(code.path, env),
                                cwd=None if code is None else code.path, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def differences(found: dict, readable_versions: tuple[int, ...], config: dict, defaults: dict) -> list[str]:
    """What keeps REF's code from serving launches this code starts and reads; empty when nothing does.

    A training option REF does not know is no obstacle while it keeps its default (REF behaves as if it
    were absent); set to anything else, REF cannot honour it.
    """
    problems = []
    if not found.get("rank_entry"):
        problems.append("it has no rank entry point lanemodel.engine.rank (an older layout of the project)")
    if found.get("schema_version") not in readable_versions:
        problems.append(f"its record schema is version {found.get('schema_version')}, this code reads "
                        f"version {', '.join(map(str, readable_versions))}")
    fields = found.get("config_fields")
    if fields is None:
        problems.append("it has no lanemodel.training.config.TrainConfig")
    elif missing := sorted(k for k in set(config) - set(fields) if config[k] != defaults.get(k, object())):
        problems.append(f"its TrainConfig lacks {', '.join(f'{k} (set to {config[k]!r} here)' for k in missing)}")
    return problems


def check_serves(code: RefCode, readable_versions: tuple[int, ...], config: dict, defaults: dict) -> RefCode:
    """REF with its config fields, or a RefError naming every reason it cannot run this run's launches."""
    found = probe(code.path)
    problems = differences(found, readable_versions, config, defaults)
    if problems:
        raise RefError(f"--scaling-ab {code.label} cannot run this suite's launches: " + "; ".join(problems))
    return replace(code, config_fields=frozenset(found["config_fields"]))
