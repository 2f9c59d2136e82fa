"""Emulated nodes: Linux network namespaces joined through a bridge by rate-limited veth links.

Each node is a namespace with one interface, ``eth0``, whose veth peer is a port of a bridge that lives in a
namespace of its own; both directions of every link are shaped with ``tc tbf`` (this kernel has tbf and
htb, not netem). The addresses (10.213.0.0/24) exist only inside namespaces this run creates, none of
which is connected to the host's network: there is no route out. Everything is removed when the block
ends, on success, failure or Ctrl-C; ``leftovers`` lists what a run of this process left, for tests.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SUBNET = "10.213.0"
IP_TIMEOUT_S = 30
NODE_INTERFACE = "eth0"


class NodesError(RuntimeError):
    """Emulated nodes cannot be made here (not root, no namespaces), or a command failed; names which."""


@dataclass(frozen=True)
class EmulatedNodes:
    prefix: str
    nodes: int
    link_gbit: float

    def namespace(self, node: int) -> str:
        return f"{self.prefix}n{node}"

    @property
    def bridge_namespace(self) -> str:
        return f"{self.prefix}br"

    def address(self, node: int) -> str:
        return f"{SUBNET}.{node + 1}"

    @property
    def namespaces(self) -> list[str]:
        return [self.namespace(i) for i in range(self.nodes)] + [self.bridge_namespace]


def _ip(*args: str) -> None:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    except FileNotFoundError:
        raise NodesError("the ip command (iproute2) is not installed") from None
    if done.returncode != 0:
        raise NodesError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


def _tc(namespace: str, device: str, link_gbit: float) -> None:
    rate_bytes = link_gbit * 1e9 / 8
    burst = max(int(rate_bytes / 100), 64 * 1024)          # 10 ms at the rate: smooth, and above rate / HZ
    try:
        done = subprocess.run(["tc", "-n", namespace, "qdisc", "add", "dev", device, "root", "tbf", "rate",
                               f"{link_gbit}gbit", "burst", str(burst), "latency", "50ms"],
                              capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    except FileNotFoundError:
        raise NodesError("the tc command (iproute2) is not installed") from None
    if done.returncode != 0:
        raise NodesError(f"tc tbf on {device} in {namespace} failed: {done.stderr.strip()}")


def check_can_emulate() -> None:
    """Before anything starts: emulated nodes need root (network namespaces, links, qdiscs)."""
    if os.geteuid() != 0:
        raise NodesError("--nodes needs root: it creates network namespaces, veth links and tc qdiscs")


def prefix_for(pid: int | None = None) -> str:
    return f"lnb{(pid or os.getpid()) % 100000}"


@contextmanager
def emulated_nodes(nodes: int, link_gbit: float, prefix: str | None = None) -> Iterator[EmulatedNodes]:
    """``nodes`` namespaces joined at ``link_gbit`` Gbit/s each way; removed however the block ends."""
    check_can_emulate()
    if nodes < 2 or not 0 < link_gbit <= 400:
        raise NodesError(f"emulated nodes need at least 2 nodes and a link of (0, 400] Gbit/s, got {nodes} "
                         f"and {link_gbit}")
    found = EmulatedNodes(prefix or prefix_for(), nodes, link_gbit)
    try:
        _ip("netns", "add", found.bridge_namespace)
        _ip("-n", found.bridge_namespace, "link", "add", "br0", "type", "bridge")
        _ip("-n", found.bridge_namespace, "link", "set", "br0", "up")
        for node in range(nodes):
            namespace, host_end, node_end = found.namespace(node), f"{found.prefix}h{node}", f"{found.prefix}c{node}"
            _ip("netns", "add", namespace)
            _ip("link", "add", host_end, "netns", found.bridge_namespace, "type", "veth", "peer", "name", node_end,
                "netns", namespace)
            _ip("-n", namespace, "link", "set", node_end, "name", NODE_INTERFACE)
            _ip("-n", namespace, "addr", "add", f"{found.address(node)}/24", "dev", NODE_INTERFACE)
            _ip("-n", namespace, "link", "set", NODE_INTERFACE, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", found.bridge_namespace, "link", "set", host_end, "master", "br0")
            _ip("-n", found.bridge_namespace, "link", "set", host_end, "up")
            _tc(namespace, NODE_INTERFACE, link_gbit)               # node -> bridge
            _tc(found.bridge_namespace, host_end, link_gbit)        # bridge -> node
        yield found
    finally:
        remove(found)


def remove(found: EmulatedNodes) -> None:
    """Delete every namespace of ``found`` (their links and qdiscs go with them); never raises."""
    for namespace in found.namespaces:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=IP_TIMEOUT_S)


def leftovers(prefix: str) -> list[str]:
    """Namespaces whose name starts with ``prefix``: what a run failed to remove."""
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    return [line.split()[0] for line in done.stdout.splitlines() if line.startswith(prefix)]


def netns_command(found: EmulatedNodes, node: int, command: list[str]) -> list[str]:
    """``command`` run inside node ``node``'s namespace."""
    return ["ip", "netns", "exec", found.namespace(node), *command]
