"""Project root: makes the packages importable from a plain checkout; the suite's plugin lives in benchmarks/."""
