"""Project root: the suite's plugin (options, parametrization, analysis, plots, gate) and its fixtures, loaded
from here when the package is not installed (installed, its ``pytest11`` entry point loads them, and a
repository of one's own that runs the plugin's items from this checkout must not see a second copy)."""
from importlib.metadata import entry_points

PLUGIN = "lanemodel.suite.plugin"
if not any(ep.value == PLUGIN for ep in entry_points(group="pytest11")):
    pytest_plugins = [PLUGIN]
