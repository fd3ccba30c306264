"""``fovea train classifier DATA_DIR --name NAME``: reached lazily from :mod:`serving.cli`, so
serving never imports torch."""

from __future__ import annotations

import argparse
import logging
import sys

from export.cli import _common
from export.weights import WeightsError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="fovea train", description="train a model from data")
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    from export.train_folder import recipe

    train_parser = sub.add_parser(
        "classifier",
        parents=[_common(suppress=False)],
        help="image classifier from an ImageFolder directory (one sub-folder per class)",
        description=recipe.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recipe.add_arguments(train_parser)
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in {"kind", "model_store", "cache"}}
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    try:
        recipe.build(args.model_store, args.cache, **options, command=recipe.command_line(argv[1:]))
    except (recipe.dataset.DatasetError, recipe.HotLoadError, WeightsError) as exc:
        print(f"fovea train {args.kind}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
