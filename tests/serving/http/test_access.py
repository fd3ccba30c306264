"""Request ids and the access log, over HTTP against the real app."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from serving.http.access import MAX_LENGTH
from serving.logs import JsonFormatter, PlainFormatter, RequestIdFilter
from tests.models import write_model_folder
from tests.server import LiveServer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    store = tmp_path_factory.mktemp("store")
    write_model_folder(store, "tiny")
    srv = LiveServer(store)

    async def noisy() -> dict[str, str]:  # logs from inside a request, like a handler would
        logging.getLogger("serving.test").warning("inside the request")
        return {"ok": "yes"}

    srv.app.add_api_route("/noisy", noisy)
    with srv:
        yield srv


def _access(caplog: pytest.LogCaptureFixture, rid: str) -> logging.LogRecord:
    rows = [r for r in caplog.records if r.name == "fovea.access" and r.request_id == rid]
    assert len(rows) == 1, [r.getMessage() for r in caplog.records]
    return rows[0]


def test_client_request_id_is_echoed_and_logged(tiny, caplog) -> None:
    caplog.set_level(logging.INFO)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    r = httpx.post(
        tiny.url + "/v2/models/tiny/infer", json=body, headers={"X-Request-ID": "order-42.a"}
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "order-42.a"
    row = _access(caplog, "order-42.a")
    assert (row.method, row.path, row.status, row.model) == (
        "POST",
        "/v2/models/tiny/infer",
        200,
        "tiny",
    )
    assert row.latency_ms > 0 and row.levelno == logging.INFO
    plain = PlainFormatter().format(row)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.match(stamp + r" INFO fovea.access \[order-42.a\] ", plain)
    assert "POST /v2/models/tiny/infer 200" in plain and "model=tiny" in plain


@pytest.mark.parametrize("given", ["x" * (MAX_LENGTH + 1), "bad id", "new\\nline", ""])
def test_unsafe_or_long_ids_are_replaced(tiny, caplog, given: str) -> None:
    caplog.set_level(logging.INFO)
    r = httpx.get(tiny.url + "/healthz", headers={"X-Request-ID": given})
    rid = r.headers["x-request-id"]
    assert rid != given and re.fullmatch(r"[0-9a-f]{32}", rid)
    _access(caplog, rid)


def test_errors_leave_a_trace_with_their_id(tiny, caplog) -> None:
    caplog.set_level(logging.INFO)
    r = httpx.post(tiny.url + "/v2/models/nope/infer", json={}, headers={"X-Request-ID": "e1"})
    assert r.status_code == 404 and r.headers["x-request-id"] == "e1"
    assert r.json()["code"] == "model_not_found"
    assert _access(caplog, "e1").status == 404
    doc = JsonFormatter().format(_access(caplog, "e1"))
    assert '"request_id":"e1"' in doc and '"status":404' in doc and '"ts":"' in doc


def test_lines_logged_during_a_request_carry_its_id(tiny, caplog) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    r = httpx.get(tiny.url + "/noisy", headers={"X-Request-ID": "ctx-7"})
    assert r.status_code == 200
    inside = [r for r in caplog.records if r.getMessage() == "inside the request"]
    assert [r.request_id for r in inside] == ["ctx-7"]


def test_every_response_has_an_id_even_unmatched_paths(tiny) -> None:
    r = httpx.get(tiny.url + "/no/such/path")
    assert r.status_code == 404 and len(r.headers["x-request-id"]) == 32


def test_metrics_count_docs_and_page_by_route_and_show_process_metrics(tiny: LiveServer) -> None:
    for path in ("/docs", "/openapi.json", "/", "/static/app.js"):
        assert httpx.get(tiny.url + path).status_code == 200, path
    text = httpx.get(tiny.url + "/metrics").text
    for path in ("/docs", "/openapi.json", "/", "/static/{name}"):
        assert f'endpoint="{path}"' in text, path
    assert 'endpoint="unmatched",model="",status="200"' not in text
    assert re.search(r"^process_cpu_seconds_total \d", text, re.M)
    assert re.search(r"^process_resident_memory_bytes \d", text, re.M)


def test_store_path_error_is_clear(tmp_path: Path) -> None:
    from serving.core.store import ModelStoreError, require_models

    with pytest.raises(ModelStoreError, match=re.escape(str(tmp_path / "none"))):
        require_models(tmp_path / "none")
    with pytest.raises(ModelStoreError, match="holds no model"):
        require_models(tmp_path)
    write_model_folder(tmp_path, "m")
    assert require_models(tmp_path) == ["m"]


def test_demo_page_opens_with_keys_on_and_api_calls_need_the_key(tmp_path: Path) -> None:
    write_model_folder(tmp_path, "tiny")
    key = "page-test-key-0123456789"
    with LiveServer(tmp_path, api_keys=[{"name": "ui", "key": key, "scopes": ["infer"]}]) as srv:
        for path in ("/", "/static/app.js", "/static/sample-chelsea.jpg"):
            assert httpx.get(srv.url + path).status_code == 200, path
        denied = httpx.get(srv.url + "/v1/models")
        assert denied.status_code == 401 and denied.headers["x-request-id"]
        ok = httpx.get(srv.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
        assert httpx.post(srv.url + "/").status_code == 401  # reads only
