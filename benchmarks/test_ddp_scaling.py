"""The DDP scaling benchmarks of this repository's lane detector: the same items the installed plugin runs in
any repository (``lanemodel.suite.items``), collected here by ``pytest benchmarks/``."""
from lanemodel.suite.items.test_ddp_scaling import test_ddp_scaling, test_memory_bandwidth, test_scaling_gate

__all__ = ["test_ddp_scaling", "test_memory_bandwidth", "test_scaling_gate"]
