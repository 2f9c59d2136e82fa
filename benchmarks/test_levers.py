"""The lever study (``pytest benchmarks/ --levers SPEC``): the installed plugin's items (``lanemodel.suite.items``)."""
from lanemodel.suite.items.test_levers import test_lever_recommended, test_levers

__all__ = ["test_lever_recommended", "test_levers"]
