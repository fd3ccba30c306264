"""The shipped Serve config and its checks, without starting Ray."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from serving.deploy import ray_deploy
from tests.conftest import ROOT

pytest.importorskip("ray.serve", reason="needs the optional extra: pip install .[ray]")


def test_ray_yaml_is_a_serve_config_with_the_scaling_knobs() -> None:
    from ray.serve.schema import ServeDeploySchema

    config = ray_deploy.load_config(ROOT / "serving/deploy/ray.yaml")
    schema = ServeDeploySchema.model_validate(config)
    (app,) = schema.applications
    assert app.import_path == "serving.deploy.ray_app:build_app"
    fovea = next(d for d in app.deployments if d.name == "Fovea")
    auto = fovea.autoscaling_config
    assert 1 <= auto["min_replicas"] <= auto["max_replicas"] and auto["target_ongoing_requests"]
    assert fovea.max_ongoing_requests > 0 and fovea.ray_actor_options.num_cpus > 0
    assert fovea.graceful_shutdown_timeout_s > 0 and fovea.health_check_period_s > 0
    assert app.args["settings"]["intra_op_threads"] == fovea.ray_actor_options.num_cpus


def test_resolve_makes_store_paths_absolute_and_checks_the_settings(tmp_path: Path) -> None:
    config = ray_deploy.load_config(ROOT / "serving/deploy/ray.yaml")
    settings = ray_deploy.resolve(config, tmp_path)["applications"][0]["args"]["settings"]
    assert settings["model_store"] == str(tmp_path / "model_store")
    assert settings["face_gallery_dir"] == str(tmp_path / "face_gallery")
    assert settings["collections_dir"] == str(tmp_path / "collections")
    config["applications"][0]["args"]["settings"]["intra_op_threads"] = 0
    with pytest.raises(pydantic.ValidationError, match="intra_op_threads"):
        ray_deploy.resolve(config, tmp_path)


def test_build_app_refuses_paths_that_depend_on_a_replica_working_directory() -> None:
    from serving.deploy.ray_app import build_app

    with pytest.raises(ValueError, match="absolute path that every Ray node sees"):
        build_app({"settings": {"model_store": "/srv/models", "face_gallery_dir": "/srv/g"}})
    app = build_app(
        {
            "settings": {
                "model_store": "/srv/models",
                "face_gallery_dir": "/srv/g",
                "collections_dir": "/srv/c",
            }
        }
    )
    assert type(app).__name__ == "Application"
