"""The ``fovea`` command: ``serve`` here; ``export`` and ``loadtest`` load their packages lazily
so that serving never imports torch or the load generator."""

from __future__ import annotations

import argparse
import importlib
import logging.config
import sys
from pathlib import Path

from serving.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.app import create_app
    from serving.core.store import ModelStoreError, require_models
    from serving.logs import logging_config

    overrides = {
        k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None
    }
    settings = Settings(**overrides)
    config = logging_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(config)
    try:
        require_models(settings.model_store)
    except ModelStoreError as exc:  # one clear line, not a start-up traceback
        logging.getLogger("serving.cli").error("%s", exc)
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=config,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        access_log=False,  # serving.http.access writes one line per request instead
    )
    return 0


def _delegate(command: str, argv: list[str]) -> int:
    """Run ``fovea <command>`` from its package; a missing optional dependency is one clear line
    naming the extra that brings it, not a traceback."""
    try:
        module = importlib.import_module(f"{command}.cli")
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] in (command, "serving"):
            raise
        print(
            f"fovea {command} needs the '{command}' extra ({exc.name} is not installed): "
            f"pip install '.[{command}]' in a clone of the repository, or "
            f"pip install 'fovea[{command}]'",
            file=sys.stderr,
        )
        return 2
    return int(module.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("export", "loadtest"):
        return _delegate(argv[0], argv[1:])
    parser = argparse.ArgumentParser(
        prog="fovea", description="Fovea: batched ONNX Runtime inference for vision models."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("export", help="train/export models into the model store (needs torch)")
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
        "--log-format",
        dest="log_format",
        choices=["plain", "json"],
        help="FOVEA_LOG_FORMAT; default plain",
    )
    serve.add_argument(
        "--decode-threads",
        dest="decode_threads",
        type=int,
        help="image decode workers (FOVEA_DECODE_THREADS; default: CPU count)",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
