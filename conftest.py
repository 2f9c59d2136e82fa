"""Project root: loads the suite's plugin (options, parametrization, analysis, plots, gate)."""
pytest_plugins = ["benchmarks.plugin"]
