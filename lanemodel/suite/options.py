"""The suite's pytest options and ini keys, generated from lanemodel.settings.OPTIONS (declared once there)."""
from __future__ import annotations

import argparse
import os

import pytest

from lanemodel.settings import OPTIONS, SettingsError, SweepSettings, argparse_help, parse_settings

PREFIX = "--lanebench-"


def prefixed(flag: str) -> str:
    """The flag no other plugin's can be: ``--world-sizes`` -> ``--lanebench-world-sizes``, ``--scaling-ab`` ->
    ``--lanebench-ab``."""
    return PREFIX + flag.removeprefix("--").removeprefix("scaling-")


def add_option(group, flag: str, **attrs) -> None:
    """The option under its prefixed name, with the short name beside it as an alias unless an option loaded
    before took that name (pytest's parser refuses a name twice)."""
    try:
        group.addoption(prefixed(flag), flag, **attrs)
    except (argparse.ArgumentError, ValueError):
        group.addoption(prefixed(flag), **attrs)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("ddp-lane-bench", "DDP scaling benchmarks")
    add_option(group, "--performance", dest="lanebench_performance", action="store_true",
                    help="run the performance group (targets as side-by-side ratios) instead of the scaling group")
    add_option(group, "--gate-calibration", dest="lanebench_calibration", type=int, default=None, metavar="K",
                    help="measure the gate: K A/A and K injected comparisons per slowdown (5, 10, 20 %%) on "
                         "this machine; saves the rates like any run")
    add_option(group, "--gate-calibration-ab", dest="lanebench_calibration_ab", type=int, default=None, metavar="K",
                    help="measure the same-session A/B gate: 2K runs of --scaling-ab against unchanged code and K "
                         "against a commit that makes every step 5 %% slower; saves the rates like any run")
    for option in OPTIONS:
        switch = {"action": "store_const", "const": "1"} if option.switch else {}
        add_option(group, option.flag, dest=f"lanebench_{option.name}", default=None, **switch,
                        help=argparse_help(f"{option.help} (env {env_name(option.name)}, ini {option.ini_key}, "
                                           f"default {option.default!r})"))
        parser.addini(option.ini_key, help=option.help, default=option.default)


ENV_PREFIX = "LANEBENCH_"


def env_name(option_name: str) -> str:
    """The environment variable of an option (``world_sizes`` -> ``LANEBENCH_WORLD_SIZES``): how a CI
    workflow sets the suite's options for every step at once."""
    return ENV_PREFIX + option_name.upper()


def read_options(config: pytest.Config) -> SweepSettings:
    """Validated options: the command line first, then the environment (``LANEBENCH_<NAME>``; empty is unset),
    then pytest.ini, then the default. A bad value is a usage error naming the flag or the variable."""
    raw, sources = {}, {}
    for option in OPTIONS:
        value = config.getoption(f"lanebench_{option.name}")
        if value is None and os.environ.get(env_name(option.name), "").strip():
            value = os.environ[env_name(option.name)].strip()
            sources[option.name] = f"{env_name(option.name)} ({option.flag})"
        raw[option.name] = value if value is not None else config.getini(option.ini_key)
    try:
        return parse_settings(raw, sources=sources)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
