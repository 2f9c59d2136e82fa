"""MkDocs hook: the options reference is built from ``lanemodel.settings.OPTIONS`` at every build.

The help texts live once, beside their parsers; a table written by hand would restate them and drift. So do
the record schema's comparable fields (``RunConfig``). The hook also publishes the example run's pictures from
``results/example/`` (one copy in the repository), and fails the build when the built options page misses an
option or the schema page a step-record field.
"""
from __future__ import annotations

import dataclasses
import html
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:       # the checkout being built, not whichever copy the interpreter has installed
    sys.path.insert(0, str(ROOT))

from lanemodel.records import RunConfig, StepRecord  # noqa: E402
from lanemodel.settings import OPTIONS  # noqa: E402
from lanemodel.suite.options import env_name  # noqa: E402  (needs ROOT on the path)

OPTIONS_PAGE = "options.md"
MARKER = "<!-- options: generated from lanemodel.settings.OPTIONS -->"
SCHEMA_PAGE = "schema.md"
COMPARABLE_MARKER = "<!-- comparable: generated from lanemodel.records.RunConfig -->"
PICTURES = ROOT / "results" / "example"
GROUP_TITLES = {
    "workload": "Workload: what each launch trains",
    "launch": "Launch: world sizes, threads, launchers",
    "plan": "Plan: launches, warm-ups, probes, budgets",
    "gate": "Gate: against a saved baseline or the history",
    "ab": "A/B: against a git ref in the same session",
    "levers": "Levers: the lever study",
    "outputs": "Outputs",
}


def cell(text: str) -> str:
    """Plain text safe inside a Markdown table cell: no raw HTML, no table breaks, no emphasis."""
    escaped = html.escape(text, quote=False).replace("|", "&#124;")
    for char in "\\`*_[]":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def where(option) -> str:
    """Who reads the option: the suite only, or the suite and ``python -m lanemodel sweep`` (with its default)."""
    if option.scope == "suite":
        return "the suite"
    if option.sweep_default is not None and option.sweep_default != option.default:
        return f"the suite and the sweep (the sweep's default `{option.sweep_default}` when `--rounds` is not given)"
    return "the suite and the sweep"


def options_markdown() -> str:
    """One table per settings group; every column comes from the declaration."""
    unknown = sorted({option.group for option in OPTIONS} - set(GROUP_TITLES))
    if unknown:
        raise ValueError(f"options group without a title in {__file__}: {', '.join(unknown)}")
    lines = []
    for group, title in GROUP_TITLES.items():
        options = [option for option in OPTIONS if option.group == group]
        if not options:
            continue
        lines += [f"## {title}", "", "| option | meaning |", "| --- | --- |"]
        for option in options:
            flag = f"`{option.flag}`" + (" (a switch)" if option.switch else "")
            default = f"`{option.default}`" if option.default else "none"
            lines.append(f"| {flag}<br>default {default} | {cell(option.help)}<br>ini `{option.ini_key}`, "
                         f"environment `{env_name(option.name)}`; read by {where(option)} |")
        lines.append("")
    return "\n".join(lines)


def comparable_markdown() -> str:
    """The fields two runs must share to be compared, as RunConfig marks them."""
    names = [f.name for f in dataclasses.fields(RunConfig) if f.metadata.get("comparable")]
    return ", ".join(f"`{name}`" for name in names) + "."


GENERATED = {OPTIONS_PAGE: (MARKER, options_markdown), SCHEMA_PAGE: (COMPARABLE_MARKER, comparable_markdown)}


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri not in GENERATED:
        return markdown
    marker, render = GENERATED[page.file.src_uri]
    if marker not in markdown:
        raise ValueError(f"docs/{page.file.src_uri} lost its marker {marker!r}: nowhere to put what it generates")
    return markdown.replace(marker, render())


def missing_names(page_uri: str, output: str) -> list[str]:
    """What a built page must name and does not: every option on the options page, every step-record field
    on the schema page (written by hand there, so a new field cannot go unmentioned)."""
    if page_uri == OPTIONS_PAGE:
        return [option.flag for option in OPTIONS if f"<code>{option.flag}</code>" not in output]
    if page_uri == SCHEMA_PAGE:
        return [f.name for f in dataclasses.fields(StepRecord) if f"<code>{f.name}</code>" not in output]
    return []


def on_post_page(output, page, config):
    """A rendering slip or an unmentioned field fails the build, not the reader."""
    missing = missing_names(page.file.src_uri, output)
    if missing:
        raise ValueError(f"the built page {page.file.src_uri} misses {', '.join(missing)}")
    return output


def on_files(files, config):
    """Serve results/example/*.png as img/*.png: the pictures the README shows, without a second copy."""
    from mkdocs.structure.files import File

    for picture in sorted(PICTURES.glob("*.png")):
        files.append(File.generated(config, f"img/{picture.name}", abs_src_path=str(picture)))
    return files
