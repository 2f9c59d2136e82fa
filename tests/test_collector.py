import json

from lanemodel.engine.collector import collect


def write_rank(tmp_path, rank, times, torn=False):
    lines = [json.dumps({"step": s, "rank": rank, "step_time": t, "start_time": 100.0 + s + rank / 10})
             for s, t in enumerate(times)]
    text = "\n".join(lines) + "\n" + ('{"step": 9, "ra' if torn else "")
    (tmp_path / f"rank{rank}.jsonl").write_text(text)


def test_slowest_rank_sets_the_step_time_and_skew_names_it(tmp_path):
    write_rank(tmp_path, 0, [1.0, 0.5, 0.7])
    write_rank(tmp_path, 1, [0.8, 0.9, 0.6])
    result = collect(tmp_path, 2)
    assert result.complete_steps == [0, 1, 2]
    assert result.step_times() == [1.0, 0.9, 0.7]
    assert [s["slowest_rank"] for s in result.skew()] == [0, 1, 0]
    assert [round(s["skew"], 6) for s in result.skew()] == [0.2, 0.4, 0.1]
    assert result.first_step_start() == 100.1


def test_partial_run_keeps_every_finished_step_and_drops_a_torn_line(tmp_path):
    write_rank(tmp_path, 0, [1.0, 1.0, 1.0], torn=True)
    write_rank(tmp_path, 1, [1.0])                       # rank 1 died after its first step
    result = collect(tmp_path, 3)                        # rank 2 never wrote anything
    assert len(result.records) == 4
    assert result.complete_steps == []
    assert result.first_step_start() is None
    assert collect(tmp_path, 2).complete_steps == [0]
    assert result.metas[2] == {"rank": 2}
