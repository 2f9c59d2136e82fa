"""Live progress lines: what a terminal and a CI log see."""
from lanemodel.engine.progress import Progress


def test_a_log_gets_one_line_per_launch_with_an_estimate_of_what_is_left(monkeypatch):
    clock = iter([0.0, 10.0, 10.0, 16.0])
    monkeypatch.setattr("lanemodel.engine.progress.time.perf_counter", lambda: next(clock))
    lines = []
    progress = Progress(steps=12, total_launches=3, write=lines.append, live=False)
    with progress.launch(2, 0, rounds=3) as on_step:
        on_step(12)
    with progress.launch(2, 1, rounds=3) as on_step:
        on_step(12)
    # After the first launch 2 more like it are left; after the second, one launch of the 8 s mean.
    assert lines == ["world size 2: launch 1 of 3, step 12 of 12, 10.0 s, about 20 s left (launch 1 of 3)",
                     "world size 2: launch 2 of 3, step 12 of 12, 6.0 s, about 8 s left (launch 2 of 3)"]


def test_a_terminal_gets_an_updating_line_then_the_final_one(monkeypatch):
    clock = iter([0.0, 1.0, 1.1, 2.0, 3.0])
    monkeypatch.setattr("lanemodel.engine.progress.time.perf_counter", lambda: next(clock))
    lines = []
    progress = Progress(steps=4, total_launches=1, write=lines.append, live=True)
    with progress.launch(1, 0, warmup=True) as on_step:
        on_step(1)        # drawn
        on_step(2)        # within half a second of the last draw: skipped
        on_step(3)        # drawn
    assert [line.startswith("\r") for line in lines] == [True, True, True]
    assert "warm-up launch, step 1 of 4, 1.0 s, about 3 s left (launch 1 of 1)" in lines[0]
    assert "step 3 of 4, 2.0 s" in lines[1]
    assert lines[2].endswith("\x1b[K\n") and "step 3 of 4, 3.0 s, about 0 s left (launch 1 of 1)" in lines[2]
