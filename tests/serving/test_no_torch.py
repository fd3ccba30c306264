"""The serving path must run where torch is not installed."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_serving_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from serving.app import create_app\n"
        "from serving.settings import Settings\n"
        "with TestClient(create_app(Settings(model_store='model_store'))) as c:\n"
        "    assert c.get('/healthz').status_code == 200\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
