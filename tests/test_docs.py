"""The documentation's sources of truth: option help texts, the generated options reference, the README's length.

Fast checks only; the site's strict build runs in ``./run lint`` and the commands the pages show run in
``test_doc_commands.py`` (slow).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lanemodel.records import RunConfig
from lanemodel.settings import OPTIONS
from lanemodel.suite.options import env_name

ROOT = Path(__file__).resolve().parents[1]
README_MOST_LINES = 250


def load_hook():
    spec = importlib.util.spec_from_file_location("docs_options_hook", ROOT / "docs" / "hooks" / "options.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.name)
def test_every_option_has_help(option):
    """The options reference is the help texts: an option without one would be a bare row."""
    assert option.help.strip(), f"{option.flag} has no help text in lanemodel/settings/options.py"


def test_options_reference_names_every_option():
    hook = load_hook()
    page = hook.options_markdown()
    for option in OPTIONS:
        assert f"`{option.flag}`" in page
        assert f"`{option.ini_key}`" in page
        assert f"`{env_name(option.name)}`" in page
        assert hook.cell(option.help) in page


def test_options_reference_keeps_help_text_out_of_html_and_tables():
    """Help texts hold ``<results>`` and the like: they must read as text, not vanish as HTML tags."""
    cell = load_hook().cell("<results>/traces/<threads>_ws<N> | a*b")
    assert "<" not in cell and ">" not in cell and "|" not in cell.replace("&#124;", "")
    assert "\\_" in cell and "\\*" in cell


def test_built_page_check_names_what_is_missing():
    hook = load_hook()
    everything = " ".join(f"<code>{option.flag}</code>" for option in OPTIONS)
    assert hook.missing_names("options.md", everything) == []
    assert hook.missing_names("options.md", everything.replace("<code>--preset</code>", "")) == ["--preset"]
    assert hook.missing_names("schema.md", "")[:2] == ["step", "loss"]
    assert hook.missing_names("index.md", "") == []


def test_comparable_fields_come_from_run_config():
    listed = load_hook().comparable_markdown()
    for name in ("cpu_model", "torch", "launcher", "steps"):
        assert f"`{name}`" in listed
    assert "`inject_step_slowdown`" not in listed and RunConfig.__dataclass_fields__["inject_step_slowdown"]


def test_readme_stays_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MOST_LINES, f"README.md has {lines} lines; move detail into docs/"
