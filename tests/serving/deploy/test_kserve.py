"""The KServe manifests: the fields KServe acts on, checked against Fovea itself (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from serving.app import create_app
from serving.settings import Settings
from tests.conftest import ROOT

KSERVE = ROOT / "serving/deploy/kserve"


def docs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((KSERVE / "inferenceservice.yaml").read_text()))


@pytest.fixture(scope="module")
def isvc() -> dict[str, Any]:
    return next(d for d in docs() if d["kind"] == "InferenceService")


@pytest.fixture(scope="module")
def runtime() -> dict[str, Any]:
    return yaml.safe_load((KSERVE / "servingruntime.yaml").read_text())


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_inference_service_speaks_v2_from_the_store_with_bounded_replicas(
    isvc: dict[str, Any], runtime: dict[str, Any]
) -> None:
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"].startswith(("s3://", "gs://", "pvc://", "https://"))
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats
    assert "v2" in runtime["spec"]["protocolVersions"]


def test_probes_and_env_match_the_fovea_container(
    isvc: dict[str, Any], runtime: dict[str, Any]
) -> None:
    model = isvc["spec"]["predictor"]["model"]
    container = runtime["spec"]["containers"][0]
    assert container["name"] == "kserve-container"
    variables = env(container) | env(model)
    port = int(variables["FOVEA_PORT"])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert variables["FOVEA_HOST"] == "0.0.0.0"
    # KServe's storage initializer downloads storageUri into /mnt/models.
    assert variables["FOVEA_MODEL_STORE"] == "/mnt/models"
    assert model["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
    # Every FOVEA_* variable is a real setting, with a value the settings accept.
    names = {n.removeprefix("FOVEA_").lower(): v for n, v in variables.items()}
    assert set(names) <= set(Settings.model_fields)
    Settings.model_validate(names)
    # The probed paths are routes of the app; the gallery lives on the shared volume.
    paths = set(create_app(Settings()).openapi()["paths"])
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert model[probe]["httpGet"]["path"] in paths
    (mount,) = model["volumeMounts"]
    for shared in ("FOVEA_FACE_GALLERY_DIR", "FOVEA_COLLECTIONS_DIR"):
        assert variables[shared].startswith(mount["mountPath"] + "/")
    (volume,) = isvc["spec"]["predictor"]["volumes"]
    assert volume["name"] == mount["name"]
    claim = next(d for d in docs() if d["kind"] == "PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    grace = isvc["spec"]["predictor"]["terminationGracePeriodSeconds"]
    assert grace > float(variables["FOVEA_GRACEFUL_SHUTDOWN_S"])
