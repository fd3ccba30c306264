"""The load generator's own capacity, measured against a no-op HTTP endpoint.

The endpoint runs in a child process and answers every request with two bytes, so what limits
the run is (nearly) the generator: its CPU time per request says how many requests per second one
core can send before the generator, not the server, becomes the bottleneck.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
from multiprocessing.connection import Connection

from loadtest.measure import MeasureSettings
from loadtest.runner import LoadSettings, Runner, Step
from loadtest.transport import Client, PreparedRequest

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _NoOp(asyncio.Protocol):
    """Answers each bodiless request (``GET``) as soon as its header ends."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        count = self.buffer.count(b"\r\n\r\n")
        if count:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(_RESPONSE * count)  # type: ignore[attr-defined]


def _serve(sock: socket.socket, ready: Connection) -> None:
    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(_NoOp, sock=sock)
        ready.send(True)
        await server.serve_forever()

    asyncio.run(run())


async def calibrate(load: LoadSettings, target: float, settings: MeasureSettings) -> Step:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    ready_recv, ready_send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_serve, args=(sock, ready_send), daemon=True)
    child.start()
    try:
        if not ready_recv.poll(30):
            raise RuntimeError("the no-op endpoint did not start")
        connections = int(target) if load.mode == "concurrency" else load.max_inflight
        async with Client(f"http://127.0.0.1:{port}", connections=connections, timeout_s=10) as c:
            runner = Runner(c, [PreparedRequest("/", b"", method="GET")], load, settings)
            return await runner.step(target)
    finally:
        child.terminate()
        child.join(5)
        sock.close()


def describe(step: Step) -> str:
    t = step.total
    per_request = t.client_us_per_request or float("nan")
    return (
        f"load generator against a no-op endpoint ({step.mode} {step.target:g}): "
        f"{t.throughput:.0f} req/s, {per_request:.0f} us of generator CPU per request "
        f"({t.client_cpu:.0%} of one core) -> at most ~{1e6 / per_request:.0f} req/s per core "
        "before the generator is the bottleneck"
    ) + "".join(f"\nwarning: {w}" for w in step.warnings)
