"""``fovea export <recipe>``: rebuild a model folder in the store from its recipe."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from export.weights import default_cache

# recipe name -> module with ``build(model_store, cache, **options)`` and ``add_arguments(parser)``
RECIPES = {
    "mobilenet_v2": "export.classifier",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fovea export", description=__doc__)
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument(
        "--cache",
        type=Path,
        default=default_cache(),
        help="downloads and datasets (default ~/.cache/fovea)",
    )
    sub = parser.add_subparsers(dest="recipe", required=True)
    for name, module in RECIPES.items():
        sub.add_parser(name, help=f"build {name}").set_defaults(module=module)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    recipe = importlib.import_module(args.module)
    options = argparse.ArgumentParser(prog=f"fovea export {args.recipe}")
    recipe.add_arguments(options)
    extra = vars(options.parse_args(rest))
    recipe.build(args.model_store, args.cache, **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
