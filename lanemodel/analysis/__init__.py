"""The analysis, from recorded launches to conclusions, without torch or pytest: bootstrap statistics
(stats), launch-level tests (launchstats), speedup and the cost model (scaling), breakdowns, the curve
per policy (curve: analyse), the regression gate (gate: compare, GateSettings), a session's outcome."""
