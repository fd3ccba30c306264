"""``fovea serve`` as an operator runs it: its log lines, its start-up summary, its refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.models import write_model_folder
from tests.server import free_port

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "serving.cli", "serve", *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_missing_store_stops_the_start_naming_the_path(tmp_path: Path) -> None:
    store = tmp_path / "absent"
    proc = _serve("--model-store", str(store), "--port", str(free_port()))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "does not exist" in out and str(store.resolve()) in out


def test_json_logs_one_timestamp_format_summary_and_request_id(tmp_path: Path) -> None:
    write_model_folder(tmp_path, "tiny")
    port = free_port()
    proc = _serve("--model-store", str(tmp_path), "--port", str(port), "--log-format", "json")
    try:
        url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.get(url + "/v1/models/nope", headers={"X-Request-ID": "cli-1"})
        assert r.status_code == 404 and r.headers["x-request-id"] == "cli-1"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert all(STAMP.fullmatch(doc["ts"]) for doc in lines), out
    loggers = {doc["logger"] for doc in lines}
    assert {"uvicorn.error", "serving.app", "fovea.access"} <= loggers, loggers
    summary = [d["msg"] for d in lines if d["logger"] == "serving.app"]
    assert summary == [f"1/1 models ready, demo page at {url}/ and docs at {url}/docs"], summary
    access = [d for d in lines if d["logger"] == "fovea.access" and d["request_id"] == "cli-1"]
    assert len(access) == 1
    assert (access[0]["status"], access[0]["path"]) == (404, "/v1/models/nope")


def test_loadtest_without_its_extra_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['aiohttp'] = None  # as if not installed\n"
        "from serving.cli import main\n"
        "sys.exit(main(['loadtest', '--help']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install '.[loadtest]'" in proc.stderr and "aiohttp" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sizing_flags_reach_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The thread-budget knobs of ``fovea serve --help`` land in the settings the server gets."""
    import logging.config

    import serving.server
    from serving import cli

    write_model_folder(tmp_path, "m")
    seen = {}
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: None)
    monkeypatch.setattr(serving.server, "serve", lambda app, settings: seen.update(s=settings))
    flags = ["--compute-nice", "3", "--decode-threads", "2", "--intra-op-threads", "1"]
    assert cli.main(["serve", "--model-store", str(tmp_path), *flags]) == 0
    s = seen["s"]
    assert (s.compute_nice, s.decode_threads, s.intra_op_threads) == (3, 2, 1)
