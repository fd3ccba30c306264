"""The ``fovea`` command: ``serve`` here; ``export``, ``train`` and ``loadtest`` load their
packages lazily so that serving never imports torch or the load generator."""

from __future__ import annotations

import argparse
import importlib
import json
import logging.config
import os
import sys
import tempfile
from pathlib import Path

from serving.core.threads import usable_cores
from serving.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    from serving.core.store import ModelStoreError, require_models
    from serving.logs import logging_config
    from serving.server import serve, serve_workers

    if args.workers is None and os.environ.get("FOVEA_WORKERS") == "auto":
        args.workers = "auto"
    if args.workers == "auto":
        args.workers = args.cores or usable_cores()
    overrides = {
        k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None
    }
    settings = Settings(**overrides)
    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    try:
        require_models(settings.model_store)
    except ModelStoreError as exc:  # one clear line, not a start-up traceback
        logging.getLogger("serving.cli").error("%s", exc)
        return 2
    if settings.workers == 1:
        from serving.app import create_app

        serve(create_app(settings), settings)
        return 0
    # Several full-app workers on one listening socket. They read their settings from the
    # environment and share a folder for the admin control log and the metrics files; the
    # variables must be set before a worker imports prometheus_client.
    with tempfile.TemporaryDirectory(prefix="fovea-") as shared:
        (Path(shared) / "metrics").mkdir()
        os.environ.update({f"FOVEA_{k.upper()}": _env(v) for k, v in overrides.items()})
        os.environ["FOVEA_SHARED_DIR"] = shared
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(shared) / "metrics")
        serve_workers("serving.app:create_worker_app", settings, Path(shared))
    return 0


def _env(value: object) -> str:
    return json.dumps(value) if isinstance(value, list | tuple) else str(value)


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a positive integer or 'auto'") from None
    if n < 1:
        raise argparse.ArgumentTypeError("a positive integer or 'auto'")
    return n


# command -> (module with its main(), the pyproject extra that brings its dependencies)
DELEGATED = {
    "export": ("export.cli", "export"),
    "train": ("export.train_folder.cli", "export"),
    "loadtest": ("loadtest.cli", "loadtest"),
}


def _delegate(command: str, argv: list[str]) -> int:
    """Run ``fovea <command>`` from its package; a missing optional dependency is one clear line
    naming the extra that brings it, not a traceback."""
    name, extra = DELEGATED[command]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] in (name.split(".")[0], "serving"):
            raise
        print(
            f"fovea {command} needs the '{extra}' extra ({exc.name} is not installed): "
            f"pip install '.[{extra}]' in a clone of the repository, or "
            f"pip install 'fovea[{extra}]'",
            file=sys.stderr,
        )
        return 2
    return int(module.main(argv) or 0)


def _models(argv: list[str]) -> int:
    """``fovea models add MODEL.onnx``: no torch, only what serving already imports."""
    if argv[:1] == ["add"]:
        return int(importlib.import_module("serving.model_add").main(argv[1:]) or 0)
    print("usage: fovea models add MODEL.onnx [options]  (see fovea models add --help)")
    return 2


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "models":
        return _models(argv[1:])
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    parser = argparse.ArgumentParser(
        prog="fovea", description="Fovea: batched ONNX Runtime inference for vision models."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("export", help="train/export models into the model store (needs torch)")
    sub.add_parser("train", help="train a classifier from a folder of images (needs torch)")
    sub.add_parser("loadtest", help="load-test a running server")
    sub.add_parser("models", help="models add MODEL.onnx: write a model's config from the file")
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
        "--log-format",
        dest="log_format",
        choices=["plain", "json"],
        help="FOVEA_LOG_FORMAT; default plain",
    )
    budget = serve.add_argument_group(
        "processes and threads",
        "Decoding costs as much CPU as inference: size these so that "
        "workers x (decode threads + ORT threads) ~= cores. Unset values come from the thread "
        "budget: each worker's share of the usable cores (scheduler affinity and cgroup quota, "
        "not the host's core count) is split between ORT intra-op threads (half) and decode "
        "threads (the rest), at least one each.",
    )
    budget.add_argument(
        "--workers",
        type=_workers,
        help="server processes, each a full app on the same port; 'auto' = one per usable "
        "core (FOVEA_WORKERS; default 1). Admin load/unload reach every worker; /metrics sums "
        "them; SIGTERM drains them all",
    )
    budget.add_argument(
        "--cores",
        type=int,
        help="cores to budget for (FOVEA_CORES; default: usable cores)",
    )
    budget.add_argument(
        "--decode-threads",
        dest="decode_threads",
        type=int,
        help="image decode threads per worker (FOVEA_DECODE_THREADS; default: from the budget)",
    )
    budget.add_argument(
        "--intra-op-threads",
        dest="intra_op_threads",
        type=int,
        help="ONNX Runtime intra-op threads per session, for models whose config leaves "
        "runtime.intra_op_threads at 0 (FOVEA_INTRA_OP_THREADS; default: from the budget)",
    )
    budget.add_argument(
        "--compute-nice",
        dest="compute_nice",
        type=int,
        help="nice increment (0-19) of decode and ONNX Runtime threads, so the event loop "
        "(admission, 503s, health) runs first when they saturate the cores "
        "(FOVEA_COMPUTE_NICE; default 10; 0: one priority)",
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
