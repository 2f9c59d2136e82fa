"""The DDP engine: thread plans (threads), machine facts (machine), the launcher and its fork server,
the rank entry point (rank), JSON-lines records (recorder), the collector, live progress, and sweeps
(sweep: measure_world_size, run_sweep)."""
