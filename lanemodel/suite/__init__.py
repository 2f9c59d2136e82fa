"""The pytest plugin (entry point ``pytest11``): a shell over the measurement session (``lanemodel.session``)
that turns options into settings, launches into benchmark rounds and verdicts into test items."""
