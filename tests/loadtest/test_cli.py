"""``fovea loadtest`` end to end against the real server on a free local port."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtest.cli import main
from tests.conftest import MODEL_STORE
from tests.models import write_model_folder
from tests.server import LiveServer, free_port

SHORT = ["--warmup", "0.3", "--window", "0.6", "--min-windows", "2", "--max-windows", "2",
         "--no-progress"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server over a ``y = 2x`` tensor model: fast enough that only the generator limits it."""
    store = tmp_path_factory.mktemp("store")
    write_model_folder(store, "tiny", batching={"max_batch_size": 8, "max_queue_size": 256})
    with LiveServer(store) as srv:
        yield srv


def run(argv: list[str], tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "out.json"
    assert main([*argv, *SHORT, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def check_consistent(step: dict[str, Any]) -> None:
    total, windows = step["total"], step["windows"]
    assert sum(w["requests"] for w in windows) == total["requests"] > 0
    assert sum(w["sent"] for w in windows) == total["sent"]
    for w in [*windows, total]:
        assert w["ok"] + sum(w["errors"].values()) == w["requests"]
        lat = w["latency_ms"]
        if lat is not None:
            assert 0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert total["duration_s"] == pytest.approx(sum(w["duration_s"] for w in windows), rel=1e-3)


def test_closed_loop_sweep_writes_table_json_csv_and_chart(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path, png = tmp_path / "out.csv", tmp_path / "out.png"
    doc = run([server.url, "-c", "1,2", "--param", "top_k=2", "--csv", str(csv_path),
               "--chart", str(png)], tmp_path)
    assert doc["model"] == "mobilenet_v2" and doc["server_metrics"] == "prometheus"
    assert [s["target"] for s in doc["steps"]] == [1, 2]
    for step in doc["steps"]:
        check_consistent(step)
        total = step["total"]
        assert total["errors"] == {}
        srv = total["server"]
        # The server ran every measured image, give or take those in flight at the window edges.
        assert srv["batches"] >= 1 and 1 <= srv["batch_size"] <= 2
        assert srv["infer_ms"] > 0 and srv["queue_ms"] >= 0
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["window"] for r in rows] == ["1", "2", "total"] * 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "req/s" in table and "p99 ms" in table and "srv batch" in table


@pytest.mark.parametrize("tensor_format", ["binary", "json"])
def test_open_loop_meets_its_target_rate(tiny: LiveServer, tmp_path: Path,
                                         tensor_format: str) -> None:
    doc = run([tiny.url, "--workload", "v2", "--model", "tiny", "--format", tensor_format,
               "--batch", "2", "-r", "50"], tmp_path)
    (step,) = doc["steps"]
    check_consistent(step)
    total = step["total"]
    assert total["errors"] == {}
    assert total["offered_rate"] == pytest.approx(50, rel=0.1)
    # Completions trail sends by the latency; on a busy 2-core machine that can stretch.
    assert total["throughput"] == pytest.approx(50, rel=0.25)
    assert total["images_per_s"] == pytest.approx(2 * total["throughput"])
    assert total["server"]["source"] == "prometheus"


def test_v2_photos_on_the_image_model(server: LiveServer, tmp_path: Path) -> None:
    doc = run([server.url, "--workload", "v2", "--model", "mobilenet_v2", "--batch", "2",
               "-c", "1", "--server-metrics", "triton"], tmp_path)
    total = doc["steps"][0]["total"]
    assert total["errors"] == {} and total["ok"] > 0
    assert total["server"]["source"] == "triton" and total["server"]["batch_size"] >= 2


def test_latency_budget_search(tiny: LiveServer, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    doc = run([tiny.url, "--workload", "v2", "--model", "tiny", "-c", "1:2",
               "--latency-budget", "2000", "--max-probes", "2"], tmp_path)
    assert [s["target"] for s in doc["steps"]] == [1, 2]
    assert doc["search"]["best"] in (1, 2)
    assert "best under p99 <= 2000 ms" in capsys.readouterr().out


def test_overload_is_counted_as_503_errors(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(MODEL_STORE / "mobilenet_v2", store / "mobilenet_v2")
    config_path = store / "mobilenet_v2" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["batching"] = {"max_batch_size": 1, "max_queue_size": 1}
    config["runtime"]["warmup_batch_sizes"] = [1]
    config_path.write_text(yaml.safe_dump(config))
    with LiveServer(store) as srv:
        doc = run([srv.url, "-c", "6"], tmp_path)
    (step,) = doc["steps"]
    check_consistent(step)
    total = step["total"]
    assert total["errors"].get("503", 0) > 0, total
    assert total["ok"] > 0 and 0 < total["error_rate"] < 1
    assert total["latency_ms"]["p99"] < 30_000  # errors' times are kept out of the percentiles


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("fovea loadtest: error: ")
    return err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["http://127.0.0.1:9", "-c", "0"], "positive"),
        (["http://127.0.0.1:9", "-c", "1", "-r", "5"], "not allowed with"),
        (["http://127.0.0.1:9", "-r", "5:1"], "bad range"),
        (["127.0.0.1:9"], "http://HOST"),
        (["http://127.0.0.1:99999"], "not valid"),
        (["http://127.0.0.1:9", "--bogus"], "unrecognized"),
        (["http://127.0.0.1:9", "--images", "/nonexistent"], "not a folder"),
        ([], "URL is required"),
    ],
)
def test_bad_options(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert fragment in one_line_error(argv, capsys)


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error([f"http://127.0.0.1:{free_port()}", *SHORT], capsys)
    assert "cannot reach" in err


def test_unknown_model(server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error([server.url, "--model", "nope", *SHORT], capsys)
    assert "404" in err and "nope" in err
    err = one_line_error([server.url, "--workload", "v2", "--model", "nope", *SHORT], capsys)
    assert "404" in err and "nope" in err
    err = one_line_error([server.url, "--param", "top_k=0", *SHORT], capsys)
    assert "422" in err


def test_entry_points() -> None:
    from serving.cli import main as fovea

    assert fovea(["loadtest", "--list-workloads"]) == 0
    proc = subprocess.run([sys.executable, "-m", "loadtest", "--window", "-1", "http://x"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_calibrate_measures_the_generator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--calibrate", "-c", "4", *SHORT]) == 0
    assert "us of generator CPU per request" in capsys.readouterr().out
