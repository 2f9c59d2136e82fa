"""Emulated nodes: namespaces joined by rate-limited links, and nothing of them left afterwards."""
import os
import signal
import subprocess
import sys
import time

import pytest

from lanemodel.engine import netns
from lanemodel.engine.netns import NodesError, emulated_nodes, leftovers


def can_make_namespaces() -> bool:
    if os.geteuid() != 0:
        return False
    probe = subprocess.run(["ip", "netns", "add", "lnbprobe"], capture_output=True)
    subprocess.run(["ip", "netns", "del", "lnbprobe"], capture_output=True)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not can_make_namespaces(), reason="needs root and network namespaces")


@needs_namespaces
def test_nodes_reach_each_other_through_a_shaped_link_and_are_removed():
    with emulated_nodes(2, 0.5, prefix="lnbta") as nodes:
        assert sorted(leftovers("lnbta")) == ["lnbtabr", "lnbtan0", "lnbtan1"]
        qdiscs = subprocess.run(["tc", "-n", nodes.namespace(0), "qdisc", "show", "dev", "eth0"],
                                capture_output=True, text=True).stdout
        assert "tbf" in qdiscs and "rate 500Mbit" in qdiscs
        routes = subprocess.run(["ip", "-n", nodes.namespace(0), "route"], capture_output=True, text=True).stdout
        assert "default" not in routes                 # no way out of the namespaces
        reach = subprocess.run(["ip", "netns", "exec", nodes.namespace(1), sys.executable, "-c",
                                "import socket; s = socket.socket(); s.settimeout(5); "
                                f"s.connect_ex(('{nodes.address(0)}', 9)); print('ok')"],
                               capture_output=True, text=True, timeout=30)
        assert reach.stdout.strip() == "ok"
    assert leftovers("lnbta") == []


@needs_namespaces
@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_nothing_is_left_when_the_block_fails_or_is_interrupted(failure):
    with pytest.raises(failure), emulated_nodes(3, 1.0, prefix="lnbtb"):
        raise failure("stop")
    assert leftovers("lnbtb") == []


@needs_namespaces
def test_a_failed_set_up_removes_what_it_had_made(monkeypatch):
    real_tc = netns._tc

    def failing_tc(namespace, device, rate):
        if namespace.endswith("n1"):
            raise NodesError("tc failed")
        real_tc(namespace, device, rate)

    monkeypatch.setattr(netns, "_tc", failing_tc)
    with pytest.raises(NodesError), emulated_nodes(2, 1.0, prefix="lnbtc"):
        pass
    assert leftovers("lnbtc") == []


def test_without_root_emulated_nodes_are_refused_naming_the_need(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NodesError, match="--nodes needs root"), emulated_nodes(2, 1.0, prefix="lnbtd"):
        pass


@pytest.mark.engine
@needs_namespaces
def test_a_sweep_on_two_nodes_stopped_by_sigterm_leaves_no_namespace(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "lanemodel", "sweep", "--world-sizes", "2", "--steps", "50",
                             "--launcher", "torchrun", "--nodes", "2", "--link-gbit", "1", "--results-dir",
                             str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = netns.prefix_for(proc.pid)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.rglob("rank0.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leftovers(prefix), "the sweep made no namespace"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
    finally:
        proc.kill()
    assert leftovers(prefix) == []
