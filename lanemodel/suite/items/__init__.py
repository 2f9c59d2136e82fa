"""The suite's test items: what ``pytest --workload MODULE:ATTR`` collects in a repository of its own."""
