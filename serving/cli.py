"""The ``fovea`` command: ``serve`` here; ``export``, ``train`` and ``loadtest`` load their
packages lazily so that serving never imports torch or the load generator."""

from __future__ import annotations

import argparse
import importlib
import logging.config
import sys
from pathlib import Path

from serving.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    from serving.app import create_app
    from serving.core.store import ModelStoreError, require_models
    from serving.logs import logging_config
    from serving.server import serve

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
    serve(create_app(settings), settings)
    return 0


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
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
