"""Connection balancing between workers: a worker leaves a new connection to a live neighbour
holding fewer, but never waits on a dead, closed or stalled one for long."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.core.worker_board import WorkerBoard
from serving.http.balance import MAX_DEFER_S, BalancedListener

ROOT = Path(__file__).resolve().parents[3]
NEIGHBOUR = """
import sys, time
from pathlib import Path
from serving.core.worker_board import WorkerBoard
board = WorkerBoard.for_process(Path(sys.argv[1]))
board.publish_connections(int(sys.argv[2]))
if sys.argv[3] == "close":
    board.retire()
print("ready", flush=True)
if sys.argv[3] != "exit":
    time.sleep(60)
"""


@pytest.fixture
def board_path(tmp_path: Path) -> Path:
    return WorkerBoard.create(tmp_path / "connections")


@pytest.fixture
def neighbour(board_path: Path) -> Iterator[object]:
    """Start another 'worker' on the board: ``neighbour(connections, mode)``, where mode is
    ``stay`` (alive, never accepts), ``close`` (closed its listener) or ``exit`` (died)."""
    procs: list[subprocess.Popen[str]] = []

    def start(connections: int, mode: str) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", NEIGHBOUR, str(board_path), str(connections), mode],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        if mode == "exit":
            proc.wait(10)

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


class _Protocol(asyncio.Protocol):
    def __init__(self, made: asyncio.Future[None]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.made.done():
            self.made.set_result(None)
        transport.close()


async def _accept_one(board: WorkerBoard, held: int) -> tuple[int, float]:
    """(times the listener stepped aside, seconds until it took the connection) for one
    client connection, when this worker already holds ``held`` connections."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[None] = loop.create_future()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    listener = BalancedListener(server, lambda: _Protocol(made), board, lambda: held, backlog=8)
    pauses = 0
    pause = listener._pause

    def counting_pause(seconds: float) -> None:
        nonlocal pauses
        pauses += 1
        pause(seconds)

    listener._pause = counting_pause  # type: ignore[method-assign]
    client = socket.socket()
    client.setblocking(False)
    try:
        started = loop.time()
        await loop.sock_connect(client, server.getsockname())
        await asyncio.wait_for(made, 10)
        return pauses, loop.time() - started
    finally:
        listener.close()
        client.close()
        server.close()


def test_a_lone_worker_accepts_at_once(board_path: Path) -> None:
    assert asyncio.run(_accept_one(WorkerBoard.for_process(board_path), held=3))[0] == 0


def test_a_busier_worker_steps_aside_then_takes_the_connection_itself(
    board_path: Path, neighbour
) -> None:
    board = WorkerBoard.for_process(board_path)
    neighbour(0, "stay")  # alive with no connection, but never accepts
    pauses, waited = asyncio.run(_accept_one(board, held=1))
    assert pauses >= 1
    assert waited >= MAX_DEFER_S  # the connection was left to the neighbour that long


def test_an_equally_busy_worker_accepts_at_once(board_path: Path, neighbour) -> None:
    board = WorkerBoard.for_process(board_path)
    neighbour(1, "stay")
    assert asyncio.run(_accept_one(board, held=1))[0] == 0


@pytest.mark.parametrize("mode", ["exit", "close"])
def test_a_dead_or_closed_neighbour_is_not_waited_for(
    board_path: Path, neighbour, mode: str
) -> None:
    board = WorkerBoard.for_process(board_path)  # slot 0; the neighbour's stays behind in slot 1
    neighbour(0, mode)
    fewest = board.fewest_connections_elsewhere()
    if mode == "exit":
        assert fewest is None  # a dead worker's slot is skipped
    else:
        assert fewest is not None and fewest > 10**9  # a closed listener is never the fewest
    assert asyncio.run(_accept_one(board, held=5))[0] == 0


def test_a_slot_freed_by_a_dead_worker_is_claimed_again(board_path: Path, neighbour) -> None:
    neighbour(0, "exit")
    board = WorkerBoard.for_process(board_path)
    assert board.slot == 0
    assert board.fewest_connections_elsewhere() is None
