"""JPEG decoders a serving user could install, on speed and on exact parity, side by side.

    python -m loadtest.benchmarks.decoders [--reps 7]

For the small JPEG and the phone photo of :mod:`loadtest.benchmarks.servers`, each decoder
produces the RGB pixels MobileNetV2's preprocessing needs (shorter side >= 256, so the phone
photo decodes at 1/8 scale): Pillow with ``draft`` (the reference: its output feeds the resize
that ``tests/serving/imaging/test_preprocess.py`` checks against torchvision), simplejpeg,
OpenCV's ``IMREAD_REDUCED_COLOR_*`` and PyTurboJPEG (when its library is installed). Rounds are
interleaved so that a busy machine slows every decoder alike; the table shows the median and
best time per image and whether the pixels are identical to the reference. Also compares the
float conversion (``to_tensor``): unfused (astype, multiply, add, transposed copy) vs fused.
Writes ``decoders.json`` under ``loadtest/results/<date>-<machine>/``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from loadtest.benchmarks import servers as srv
from loadtest.report import format_table

Decoder = Callable[[bytes], np.ndarray]


def decoders(width: int, height: int, need: tuple[int, int]) -> dict[str, Decoder]:
    fits = min(width // need[0], height // need[1])
    scale = next(s for s in (8, 4, 2, 1) if fits >= s or s == 1)
    out: dict[str, Decoder] = {}

    def pillow(data: bytes) -> np.ndarray:
        img = Image.open(io.BytesIO(data))
        img.draft("RGB", need)
        return np.asarray(img.convert("RGB"))

    out["pillow (draft)"] = pillow
    try:
        import simplejpeg

        out["simplejpeg"] = lambda data: simplejpeg.decode_jpeg(
            data, colorspace="RGB", min_width=math.ceil(width / scale),
            min_height=math.ceil(height / scale))
    except ImportError:
        pass
    try:
        import cv2

        flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[scale]
        out["opencv (reduced)"] = lambda data: cv2.cvtColor(
            cv2.imdecode(np.frombuffer(data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION),
            cv2.COLOR_BGR2RGB)
    except ImportError:
        pass
    try:
        from turbojpeg import TJPF_RGB, TurboJPEG

        tj = TurboJPEG()
        out["pyturbojpeg"] = lambda data: tj.decode(data, pixel_format=TJPF_RGB,
                                                    scaling_factor=(1, scale))
    except (ImportError, RuntimeError, OSError):  # no package, or no libturbojpeg
        pass
    return out


def timed(fn: Callable[[], object], reps: int, inner: int) -> list[float]:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) / inner * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--out", type=Path)
    p.add_argument("--machine")
    args = p.parse_args(argv)
    from serving.core.config import load_config
    from serving.imaging.preprocess import ImagePreprocessor

    config = load_config(srv.STORE / "mobilenet_v2" / "config.yaml")
    assert config.preprocess is not None
    pre = ImagePreprocessor(config.preprocess, max_pixels=10**9)
    report: dict[str, Any] = {"machine": srv.machine_info(), "photos": {}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = srv.photos(Path(tmp))
        for name, path in files.items():
            data = path.read_bytes()
            width, height = Image.open(io.BytesIO(data)).size
            need = pre.needed_size(width, height)
            decs = decoders(width, height, need)
            ref = decs["pillow (draft)"](data)
            inner = 20 if name == "small" else 3
            times: dict[str, list[float]] = {k: [] for k in decs}
            for _ in range(args.reps):  # interleaved rounds
                for k, fn in decs.items():
                    times[k] += timed(lambda fn=fn, data=data: fn(data), 1, inner)
            entry = {}
            for k, fn in decs.items():
                px = fn(data)
                same = px.shape == ref.shape and bool(np.array_equal(px, ref))
                diff = (int(np.abs(px.astype(int) - ref.astype(int)).max())
                        if px.shape == ref.shape else None)
                entry[k] = {"median_ms": float(np.median(times[k])), "best_ms": min(times[k]),
                            "shape": list(px.shape), "identical": same, "max_abs_diff": diff}
                rows.append([name, k, f"{entry[k]['median_ms']:.2f}",
                             f"{entry[k]['best_ms']:.2f}", "x".join(map(str, px.shape[:2])),
                             "yes" if same else f"no (max diff {diff})"])
            full = timed(lambda data=data: pre(data), args.reps, inner)
            entry["fovea preprocess (decode+resize+crop+normalise)"] = {
                "median_ms": float(np.median(full)), "best_ms": min(full)}
            rows.append([name, "fovea preprocess, all steps", f"{np.median(full):.2f}",
                         f"{min(full):.2f}", "3x224x224", "-"])
            report["photos"][name] = {"bytes": len(data), "size": [width, height], **entry}
    px = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    gain, bias = pre._gain, pre._bias

    def unfused() -> np.ndarray:
        return np.ascontiguousarray((px.astype(np.float32) * gain + bias).transpose(2, 0, 1))

    assert np.array_equal(unfused(), pre.to_tensor(px))
    t_un, t_fu = [], []
    for _ in range(args.reps):
        t_un += timed(unfused, 1, 100)
        t_fu += timed(lambda: pre.to_tensor(px), 1, 100)
    rows.append(["224x224", "to_tensor unfused", f"{np.median(t_un):.3f}", f"{min(t_un):.3f}",
                 "3x224x224", "-"])
    rows.append(["224x224", "to_tensor fused (fovea)", f"{np.median(t_fu):.3f}",
                 f"{min(t_fu):.3f}", "3x224x224", "identical"])
    report["to_tensor"] = {"unfused_median_ms": float(np.median(t_un)),
                           "fused_median_ms": float(np.median(t_fu))}
    print(format_table(["photo", "step", "median ms", "best ms", "output", "same as Pillow"],
                       rows))
    folder = srv.results_dir(args.out, args.machine)
    (folder / "decoders.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {folder / 'decoders.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
