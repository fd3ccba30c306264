"""The worker board's run counts, and the lone-run session they choose: a run that starts while
nothing else runs on the machine takes every core; any other run keeps its share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from serving.core.config import load_config
from serving.core.runtime import OnnxModel
from serving.core.worker_board import WorkerBoard
from tests.models import write_model_folder

ROOT = Path(__file__).resolve().parents[3]
RUNNING_NEIGHBOUR = """
import sys, time
from pathlib import Path
from serving.core.worker_board import WorkerBoard
with WorkerBoard.for_process(Path(sys.argv[1])).running():
    print("running", flush=True)
    time.sleep(60)
"""


def test_a_run_is_alone_only_while_no_other_run_is_in_flight() -> None:
    board = WorkerBoard(None)
    with board.running() as first:
        assert first
        with board.running() as second:  # another runner thread of this process
            assert not second
    with board.running() as again:
        assert again


def test_a_run_in_another_live_worker_means_not_alone(tmp_path: Path) -> None:
    path = WorkerBoard.create(tmp_path / "board")
    board = WorkerBoard.for_process(path)
    neighbour = subprocess.Popen(
        [sys.executable, "-c", RUNNING_NEIGHBOUR, str(path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert neighbour.stdout is not None and neighbour.stdout.readline().strip() == "running"
        with board.running() as alone:
            assert not alone
    finally:
        neighbour.kill()
        neighbour.wait()
    with board.running() as alone:  # it died mid-run: its count no longer holds anyone back
        assert alone


class _Recording:
    def __init__(self, session: object, name: str, calls: list[str]) -> None:
        self.session, self.name, self.calls = session, name, calls

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.calls.append(self.name)
        return self.session.run(names, feeds)  # type: ignore[attr-defined]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_lone_run_takes_the_all_core_session(tmp_path: Path, enabled: bool) -> None:
    folder = write_model_folder(tmp_path, "m", factor=3.0)
    config = load_config(folder / "config.yaml")  # intra_op_threads: 1
    config = config.model_copy(
        update={"runtime": config.runtime.model_copy(update={"lone_runs_use_all_cores": enabled})}
    )
    board = WorkerBoard(None)
    model = OnnxModel(folder / "1" / "model.onnx", config, board=board, lone_threads=2)
    calls: list[str] = []
    model.session = _Recording(model.session, "share", calls)  # type: ignore[assignment]
    if enabled:
        lone = model._lone_session
        assert lone is not None and lone.get_session_options().intra_op_num_threads == 2
        model._lone_session = _Recording(lone, "all cores", calls)  # type: ignore[assignment]
    else:
        assert model._lone_session is None
    x = np.arange(8, dtype=np.float32).reshape(2, 4)

    np.testing.assert_array_equal(model.run({"x": x})["y"], x * 3)
    with board.running():  # another run in flight
        np.testing.assert_array_equal(model.run({"x": x})["y"], x * 3)
    assert calls == (["all cores", "share"] if enabled else ["share", "share"])


def test_bound_runs_keep_one_session(tmp_path: Path) -> None:
    """IO-bound runs always take the model's own session: no second session is built."""
    folder = write_model_folder(tmp_path, "m", factor=3.0)
    config = load_config(folder / "config.yaml")
    runtime = config.runtime.model_copy(
        update={"lone_runs_use_all_cores": True, "io_binding": True}
    )
    config = config.model_copy(update={"runtime": runtime})
    model = OnnxModel(folder / "1" / "model.onnx", config, board=WorkerBoard(None), lone_threads=2)
    assert model._lone_session is None
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(model.run({"x": x})["y"], x * 3)
