"""The measurement session, in plain Python: what to launch, in what order and why, and what it concluded.

The suite (``benchmarks/``) and ``python -m lanemodel sweep`` drive it; it never imports pytest.
"""
