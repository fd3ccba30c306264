"""A multi-node Ray cluster on one machine (``ray.cluster_utils.Cluster``), with every port Ray
opens chosen from a block you give, for trying the Ray deployment, its tests and benchmarks.

Each node is a full raylet with its own logical CPUs, so replicas placed on different nodes behave
as on different machines (removing a node kills its processes), though they share this CPU.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

PORTS_PER_NODE = 20  # 8 fixed services + 12 worker processes


def node_ports(base: int, head: bool) -> dict[str, Any]:
    """Ray's listening ports for one node, all within ``base .. base + PORTS_PER_NODE - 1``."""
    ports: dict[str, Any] = {
        "node_manager_port": base + 1,
        "object_manager_port": base + 2,
        "dashboard_agent_listen_port": base + 3,
        "metrics_agent_port": base + 4,
        "metrics_export_port": base + 5,
        "runtime_env_agent_port": base + 6,
        "min_worker_port": base + 8,
        "max_worker_port": base + PORTS_PER_NODE - 1,
    }
    if head:
        ports |= {"gcs_server_port": base, "ray_client_server_port": base + 7}
    return ports


def start(
    node_cpus: list[float], base_port: int, object_store_mb: int = 100, attempts: int = 3
) -> Any:
    """Start a head node plus one worker node per extra entry of ``node_cpus`` (logical CPUs);
    no dashboard. Returns the ``Cluster``; call ``.shutdown()`` when done.

    Retried because a raylet gives its node's dashboard agent a fixed 15 s to start and exits
    otherwise (ray-project/ray#65983), which happens when the machine is saturated."""
    for attempt in range(1, attempts + 1):
        before = _children()
        try:
            return _start(node_cpus, base_port, object_store_mb)
        except Exception as exc:
            # A node that fails half-way leaves its GCS/raylet running (the Cluster object that
            # would stop them was never returned): stop the processes this attempt started.
            for pid in _children() - before:
                _kill_tree(pid)
            if attempt == attempts:
                raise
            log.warning("local Ray cluster failed to start (%s); retrying", exc)
    raise AssertionError("unreachable")


def _start(node_cpus: list[float], base_port: int, object_store_mb: int) -> Any:
    from ray.cluster_utils import Cluster

    _loopback_only()
    common = {
        "object_store_memory": object_store_mb * 1024 * 1024,
        "num_gpus": 0,
        "node_ip_address": "127.0.0.1",  # loopback only, whatever the host's interfaces are
    }
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": node_cpus[0],
            "include_dashboard": False,
            **common,
            **node_ports(base_port, head=True),
        },
    )
    try:
        for i, cpus in enumerate(node_cpus[1:], start=1):
            cluster.add_node(
                num_cpus=cpus, **common, **node_ports(base_port + i * PORTS_PER_NODE, head=False)
            )
        cluster.wait_for_nodes()
    except Exception:
        cluster.shutdown()
        raise
    return cluster


def connect(cluster: Any, namespace: str = "serve") -> None:
    """Connect this process to ``cluster`` as a driver, over loopback."""
    import ray

    _loopback_only()
    ray.init(address=cluster.address, namespace=namespace)


def _loopback_only() -> None:
    # Ray swaps 127.0.0.1 for the host's network address when it resolves a cluster address;
    # this switch (Ray's own, meant for laptops) keeps a one-machine cluster on loopback.
    import os

    from ray._private import ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    # All nodes share one host, so "prefer a replica on the proxy's node" would only hide the
    # spread over nodes that a real cluster has; the nodes' processes inherit this.
    os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = "0"


def _children(parent: int | None = None) -> set[int]:
    """PIDs of ``parent``'s (default: this process's) direct children, from /proc."""
    import os

    parent = os.getpid() if parent is None else parent
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.add(int(entry))
    return found


def _kill_tree(pid: int) -> None:
    import contextlib
    import os
    import signal

    for child in _children(pid):
        _kill_tree(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
