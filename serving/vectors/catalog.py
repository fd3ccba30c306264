"""Image collections on disk: ``<root>/<name>/collection.json`` (the bound model) beside its store.

A collection is bound to one embedding model at creation, because vectors of different models
are not comparable. Creating writes the manifest atomically under the root's lock; deleting
renames the folder away first, so every process sees a collection either whole or gone.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from serving.errors import BadRequest, NotFound
from serving.vectors.collection import Conflict, VectorCollection
from serving.vectors.store import VectorStore

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MANIFEST = "collection.json"


@dataclass(frozen=True)
class Manifest:
    name: str
    model: str
    dim: int


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._open: dict[str, tuple[Manifest, VectorCollection]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, model: str, dim: int) -> Manifest:
        _check(name)
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # two processes creating one name: one wins
            folder = self.root / name
            if (folder / MANIFEST).is_file():
                raise Conflict(f"collection {name!r} exists", code="collection_exists")
            folder.mkdir(exist_ok=True)
            manifest = Manifest(name, model, dim)
            tmp = folder / f".tmp-{MANIFEST}.{secrets.token_hex(4)}"
            tmp.write_text(json.dumps(manifest.__dict__))
            os.replace(tmp, folder / MANIFEST)
        finally:
            os.close(fd)
        return manifest

    def get(self, name: str) -> tuple[Manifest, VectorCollection]:
        _check(name)
        path = self.root / name / MANIFEST
        with self._lock:
            if not path.is_file():  # deleted by this or another process
                self._open.pop(name, None)
                raise NotFound(f"no collection {name!r}", code="collection_not_found")
            if name not in self._open:
                manifest = Manifest(**json.loads(path.read_text()))
                store = VectorStore(path.parent, manifest.dim, name=f"collections/{name}")
                self._open[name] = (manifest, VectorCollection(store, manifest.dim))
            return self._open[name]

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if (d / MANIFEST).is_file())

    def delete(self, name: str) -> None:
        self.get(name)  # 404 if absent
        gone = self.root / f".deleted-{name}-{secrets.token_hex(4)}"
        try:
            os.rename(self.root / name, gone)  # atomic: no process sees half a collection
        except FileNotFoundError:
            raise NotFound(f"no collection {name!r}", code="collection_not_found") from None
        with self._lock:
            self._open.pop(name, None)
        shutil.rmtree(gone, ignore_errors=True)


def _check(name: str) -> None:
    if not NAME.match(name):
        raise BadRequest(
            f"collection name {name!r}: use 1-64 of a-z 0-9 _ -, starting with a letter or digit",
            code="invalid_collection_name",
        )
