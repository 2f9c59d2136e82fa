"""Same-session A/B blocks: the drawn order is balanced, and REF's launches become a saved run of their own."""
from pathlib import Path

from lanemodel.engine.worktree import RefCode
from lanemodel.session.abtest import CURRENT, REF, ABSession
from lanemodel.suite.bench_storage import ref_saved_run

CODE = RefCode("main", "a" * 40, Path("/nowhere"))


def run_blocks(ab: ABSession, key, blocks: int) -> list[str]:
    order = []
    for _ in range(blocks):
        ab.block(key, lambda: order.append(REF), lambda: order.append(CURRENT))
    return order


def test_blocks_come_in_balanced_pairs_in_a_drawn_order():
    seen = set()
    for seed in range(20):
        ab = ABSession(CODE, seed)
        order = run_blocks(ab, ("tuned", 1), 8)
        blocks = [tuple(order[i:i + 2]) for i in range(0, 16, 2)]
        assert all(sorted(block) == [CURRENT, REF] for block in blocks)
        for first, second in zip(blocks[::2], blocks[1::2]):
            assert first == second[::-1]            # ABBA or BAAB
        seen.add(tuple(blocks))
    assert len(seen) > 5                            # the order is drawn, not fixed


def test_the_same_seed_draws_the_same_order():
    assert run_blocks(ABSession(CODE, 7), ("tuned", 2), 6) == run_blocks(ABSession(CODE, 7), ("tuned", 2), 6)


class FakeLaunch:
    finished = True
    global_batch_size = 4

    def __init__(self, median):
        self.kept_step_times = (median, median)


def test_ref_launches_become_a_saved_run_with_refs_commit():
    ab = ABSession(CODE, 0)
    for median, seconds in ((0.2, 5.0), (0.22, 6.0)):
        ab.record(("tuned", 2), REF, FakeLaunch(median), seconds)
        ab.record(("tuned", 2), CURRENT, FakeLaunch(median), seconds)
    assert ab.ref_series()[("tuned", 2)].launches == ((0.2, 0.2), (0.22, 0.22))
    tree = {"commit_info": {"id": "b" * 40, "dirty": True, "project": "p"}, "machine_info": {"node": "n"},
            "benchmarks": [{"name": "test_ddp_scaling[tuned-ws2]", "stats": {"rounds": 9},
                            "extra_info": {"world_size": 2, "threads": "tuned"}},
                           {"name": "unrelated", "stats": {}, "extra_info": {}}]}
    saved = ref_saved_run(tree, ab, {"preset": "tiny"}, lambda launches: {"launches": len(launches)})
    assert saved["commit_info"] == {"id": CODE.commit, "dirty": False, "project": "p", "branch": "main"}
    (bench,) = saved["benchmarks"]
    assert bench["stats"]["rounds"] == 2 and bench["stats"]["data"] == [5.0, 6.0]
    assert bench["stats"]["mean"] == 5.5
    assert bench["extra_info"] == {"launches": 2, "code": {"ref": "main", "commit": CODE.commit}}
    assert saved["scaling"]["config"] == {"preset": "tiny"} and saved["scaling"]["ab"]["side"] == "REF"
    assert saved["scaling"]["ab"]["order"] == {"tuned ws2": [REF, CURRENT, REF, CURRENT]}
    assert tree["commit_info"]["id"] == "b" * 40          # the working tree's run is left as it was
