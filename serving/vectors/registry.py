"""Every vector store the server keeps, by ``<kind>/<name>``: opened at start, listed, restored.

Kinds are folders from the settings: ``faces`` (one face gallery per embedding model) and
``collections`` (image collections). Opening every store at start is what removes temp files a
crashed writer left behind and logs a corrupt store before the first request finds it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from serving.errors import NotFound
from serving.vectors.store import Health, VectorStore

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class StoreRegistry:
    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots
        self._stores: dict[str, VectorStore] = {}
        self._lock = threading.Lock()

    def open_all(self) -> None:
        for kind, root in self.roots.items():
            if root.is_dir():
                for d in sorted(root.iterdir()):
                    if d.is_dir() and NAME.match(d.name) and (d / ".lock").exists():
                        self.store(kind, d.name)

    def store(self, kind: str, name: str) -> VectorStore:
        """The store ``kind/name``; 404 if no such store exists on disk."""
        root = self.roots.get(kind)
        if root is None or not NAME.match(name) or ".." in name:
            raise NotFound(f"no vector store {kind}/{name}", code="store_not_found")
        directory, key = root / name, f"{kind}/{name}"
        with self._lock:
            if not (directory / ".lock").exists():  # never created, or deleted by any process
                self._stores.pop(key, None)
                raise NotFound(f"no vector store {key}", code="store_not_found")
            if key not in self._stores:
                self._stores[key] = VectorStore(directory, name=key)
            return self._stores[key]

    def health(self) -> dict[str, Health]:
        self.open_all()  # stores created since (by any process) are listed too
        with self._lock:
            alive = {k: s for k, s in self._stores.items() if (s.directory / ".lock").exists()}
            self._stores = alive
        return {key: store.health() for key, store in sorted(alive.items())}
