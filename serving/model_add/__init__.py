"""``fovea models add MODEL.onnx``: serve an exported model by writing its config for it.

Like Triton's auto-completed configs: the graph's inputs, outputs, shapes and metadata decide
the task, the output format and the input conventions; the user is asked only for what the file
does not say. The config is checked by loading the model and serving a probe image with it
before anything is written.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from serving.model_add.graph import Graph, read_graph
from serving.model_add.guess import FORMATS, CannotInfer, Choices, propose
from serving.model_add.install import hot_load, to_yaml, validate, write

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fovea models add",
        description="Add an ONNX detector, segmenter or classifier to the model store.",
    )
    p.add_argument("model", type=Path, help="the .onnx file")
    p.add_argument("--name", help="model name (default: the file's stem)")
    p.add_argument("--store", type=Path, default=Path("model_store"), help="model repository")
    p.add_argument("--version", type=int, default=1, help="version folder to write (default 1)")
    p.add_argument("--task", choices=["detection", "segmentation", "classification"])
    p.add_argument("--format", choices=FORMATS, help="output layout, when it cannot be told")
    p.add_argument("--labels", type=Path, help="class names, one per line in class-id order")
    p.add_argument("--score-threshold", type=float, help="default detection score threshold")
    p.add_argument("--mean", type=float, nargs=3, help="per-channel mean after scaling")
    p.add_argument("--std", type=float, nargs=3, help="per-channel std after scaling")
    p.add_argument("--pixel-range", choices=["0-1", "0-255"], help="what the model expects")
    p.add_argument("--bgr", action="store_true", help="the model takes BGR channel order")
    p.add_argument("--max-batch-size", type=int, help="rows per run (batchable models)")
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("WIDTH", "HEIGHT"),
        help="resize images to this (letterbox for YOLO) instead of the model's own size",
    )
    p.add_argument("--dry-run", action="store_true", help="print the config, write nothing")
    p.add_argument("--force", action="store_true", help="replace an existing model's config")
    p.add_argument("--url", help="a running server to hot-load the model into")
    p.add_argument("--token", default=os.environ.get("FOVEA_ADMIN_TOKEN"), help="admin token")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _add(args, argv if argv is not None else sys.argv[1:])
    except (CannotInfer, FileExistsError, RuntimeError, ValueError, OSError) as exc:
        print(f"fovea models add: {exc}", file=sys.stderr)
        return 2


def _add(args: argparse.Namespace, argv: list[str]) -> int:
    path: Path = args.model
    if not path.is_file():
        raise CannotInfer(f"{path} does not exist")
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)
    graph = read_graph(path)
    labels = None
    if args.labels:
        labels = [line for line in args.labels.read_text(encoding="utf-8").splitlines() if line]
    choices = Choices(
        name=name,
        task=args.task,
        format=args.format,
        labels=labels,
        score_threshold=args.score_threshold,
        mean=args.mean,
        std=args.std,
        pixel_range=args.pixel_range,
        bgr=args.bgr,
        max_batch_size=args.max_batch_size,
        size=tuple(args.size) if args.size else None,
    )
    config, names = propose(graph, choices, _card(path, graph, argv))
    outcome = validate(config, path, names)
    if args.dry_run:
        print(to_yaml(config), end="")
        print(f"# {outcome}; {len(names)} labels", file=sys.stderr)
        return 0
    folder = write(args.store, config, names, path, args.version, force=args.force)
    print(f"wrote {folder} ({config['task']}, {_format(config)}); {outcome}")
    if args.url:
        entry = hot_load(args.url, name, args.token)
        print(f"{args.url}: {name} is {entry.get('state', '?')}")
    return 0


def _format(config: dict[str, Any]) -> str:
    post = config["postprocess"]
    return str(post.get("format", post["kind"]))


def _card(path: Path, graph: Graph, argv: list[str]) -> dict[str, Any]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = graph.metadata
    made_by = " ".join(v for v in (meta.get("description"), meta.get("version")) if v)
    return {
        "summary": f"{path.name}, added with fovea models add",
        "source": f"{path.name} (sha256 {digest})" + (f"; {made_by}" if made_by else ""),
        "license": meta.get("license", "unknown: fill in card.license"),
        "training_data": "unknown: fill in card.training_data",
        "reproduce": "fovea models add "
        + " ".join(shlex.quote(a) for a in argv if a not in ("--dry-run", "--force")),
    }
