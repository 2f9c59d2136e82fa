"""Project root: loads the suite's plugin (options, parametrization, analysis, plots, gate) and its fixtures."""
pytest_plugins = ["benchmarks.plugin", "benchmarks.fixtures"]
