"""The repository change log and its followers, without Ray: replicas converge on one state."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass, field

from serving.deploy.sync import Change, ChangeLog, Follower, latest_per_model
from serving.errors import NotFound
from tests.conftest import ROOT


@dataclass
class Entry:
    state: State


@dataclass
class State:
    value: str


@dataclass
class FakeRepository:
    """Records what a follower asked of it; a missing model fails like a missing folder."""

    models: set[str]
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def load(self, name: str) -> Entry:
        self.calls.append(("load", name))
        if name not in self.models:
            raise FileNotFoundError(f"no model folder {name!r}")
        return Entry(State("ready"))

    async def unload(self, name: str) -> Entry:
        self.calls.append(("unload", name))
        if name not in self.models:
            raise NotFound(f"unknown model {name!r}", code="model_not_found")
        return Entry(State("unloaded"))


def test_only_the_newest_change_per_model_is_replayed() -> None:
    changes = [
        Change(1, "unload", "a", "r1"),
        Change(2, "unload", "b", "r1"),
        Change(3, "load", "a", "r2"),
    ]
    assert latest_per_model(changes, 0) == [changes[1], changes[2]]
    assert latest_per_model(changes, 2) == [changes[2]]
    assert latest_per_model(changes, 3) == []


def test_a_change_reaches_every_follower_and_the_publisher_sees_their_states() -> None:
    async def scenario() -> None:
        log = ChangeLog()
        repos = {r: FakeRepository({"m"}) for r in ("r1", "r2", "r3")}
        followers = {r: Follower(r, log, repo) for r, repo in repos.items()}
        for f in followers.values():  # startup replay: nothing yet
            assert await f.step(wait_s=0) == []
        tasks = [asyncio.create_task(f.run(wait_s=0.5)) for f in followers.values()]
        # r1 unloaded "m" itself (through HTTP), then publishes; the others follow.
        gen = await log.publish("unload", "m", "r1", "unloaded")
        states = await asyncio.wait_for(log.wait_applied(gen, timeout_s=5), 10)
        assert states == {"r1": "unloaded", "r2": "unloaded", "r3": "unloaded"}
        assert repos["r1"].calls == []  # the publisher is not asked again
        assert repos["r2"].calls == repos["r3"].calls == [("unload", "m")]
        # A model missing on one node's store: reported, not fatal.
        repos["r3"].models.clear()
        gen = await log.publish("load", "m", "r2", "ready")
        states = await log.wait_applied(gen, timeout_s=5)
        assert states["r1"] == states["r2"] == "ready"
        assert states["r3"].startswith("failed: ") and "no model folder" in states["r3"]
        # A replica that starts later replays the newest change per model before serving; an
        # unload of a model it never had counts as done.
        await log.publish("unload", "x", "r1", "unloaded")
        late = FakeRepository({"m"})
        follower = Follower("r4", log, late)
        assert [c.model for c in await follower.step(wait_s=0)] == ["m", "x"]
        assert late.calls == [("load", "m"), ("unload", "x")]
        await follower.step(wait_s=0)  # acknowledges with the states that resulted
        states = await log.wait_applied(log.generation, timeout_s=1)
        assert states["r4"] == "unloaded"
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())


def test_a_silent_replica_stops_counting_and_a_new_epoch_is_replayed() -> None:
    async def scenario() -> None:
        now = [0.0]
        log = ChangeLog(stale_after_s=10, clock=lambda: now[0])
        alive, dead = FakeRepository({"m"}), FakeRepository({"m"})
        await Follower("dead", log, dead).step(wait_s=0)
        follower = Follower("alive", log, alive)
        await follower.step(wait_s=0)
        gen = await log.publish("unload", "m", "alive", "unloaded")
        now[0] = 11.0  # "dead" has not polled for longer than stale_after_s; "alive" polls
        await follower.step(wait_s=0)
        assert await log.wait_applied(gen, timeout_s=1) == {"alive": "unloaded"}
        # The log restarted (new epoch, empty): the follower starts over and keeps its state.
        fresh = ChangeLog()
        follower.log = fresh
        assert await follower.step(wait_s=0) == []
        assert (follower.epoch, follower.applied) == (fresh.epoch, 0)

    asyncio.run(scenario())


def test_serving_and_the_cli_never_import_ray() -> None:
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from serving.app import create_app\n"
        "from serving.cli import main\n"
        "from serving.settings import Settings\n"
        "with TestClient(create_app(Settings(model_store='model_store', load_models=[]))) as c:\n"
        "    assert c.get('/healthz').status_code == 200\n"
        "try:\n"
        "    main(['deploy', 'ray', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'ray')\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
