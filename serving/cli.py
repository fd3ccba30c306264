"""The ``fovea`` command: ``serve`` here; ``export``, ``train`` and ``loadtest`` load their
packages lazily so that serving never imports torch or the load generator."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from serving.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.app import create_app

    overrides = {
        k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None
    }
    settings = Settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        access_log=False,
    )
    return 0


def _add_deploy_parser(sub: argparse._SubParsersAction) -> None:
    deploy = sub.add_parser("deploy", help="deploy onto a cluster engine (needs .[ray])")
    engines = deploy.add_subparsers(dest="engine", required=True)
    ray = engines.add_parser("ray", help="submit a Ray Serve config (serving/deploy/ray.yaml)")
    ray.add_argument("--config", type=Path, required=True, help="Serve config file (YAML)")
    ray.add_argument("--address", help="Ray cluster address (default: auto, the running one)")
    ray.add_argument("--timeout", type=float, default=300, help="seconds to wait for RUNNING")


def _deploy_ray(args: argparse.Namespace) -> int:
    from serving.deploy.ray_deploy import deploy, load_config, resolve

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = resolve(load_config(args.config), Path.cwd())
    deploy(config, address=args.address, timeout_s=args.timeout)
    http = config.get("http_options", {})
    print(f"Fovea running on Ray Serve at http://{http.get('host')}:{http.get('port')}/")
    return 0


def _delegate(module: str, argv: list[str]) -> int:
    return int(importlib.import_module(module).main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "export":
        return _delegate("export.cli", argv[1:])
    if argv and argv[0] == "train":
        return _delegate("export.train_folder.cli", argv[1:])
    if argv and argv[0] == "loadtest":
        return _delegate("loadtest.cli", argv[1:])
    parser = argparse.ArgumentParser(
        prog="fovea", description="Fovea: batched ONNX Runtime inference for vision models."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("export", help="train/export models into the model store (needs torch)")
    sub.add_parser("train", help="train a classifier from a folder of images (needs torch)")
    sub.add_parser("loadtest", help="load-test a running server")
    serve = sub.add_parser("serve", help="serve the model store over HTTP")
    serve.add_argument("--host", help="bind address (FOVEA_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (FOVEA_PORT; default 8000)")
    serve.add_argument(
        "--model-store",
        dest="model_store",
        type=Path,
        help="model repository (FOVEA_MODEL_STORE; default ./model_store)",
    )
    serve.add_argument("--log-level", dest="log_level", help="FOVEA_LOG_LEVEL; default info")
    serve.add_argument(
        "--decode-threads",
        dest="decode_threads",
        type=int,
        help="image decode workers (FOVEA_DECODE_THREADS; default: CPU count)",
    )
    _add_deploy_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "deploy":
        return _deploy_ray(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
