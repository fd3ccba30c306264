"""Exact search vs three HNSW libraries (FAISS, hnswlib, usearch) on add, search and recall@10.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python -m loadtest.benchmarks.vector_search \
        [--sizes 10000 100000 1000000]
        [--dim 128] [--queries 1000] [--big-queries 200] [--threads 2] [--real NAME=PATH.npy]

Every library gets the same graph settings (M=16, efConstruction=100, inner product on
L2-normalised float32 vectors) and is searched one query at a time on one thread at several
``ef`` values, so the table shows the latency each pays for a given recall. Recall@10 is measured
against exact search (a matrix product) on the same vectors. Synthetic vectors are a mixture of
Gaussian clusters (real embeddings cluster; uniform noise is a needlessly hard case); ``--real``
adds recall rows for embeddings of real photos saved as an ``[N, D]`` ``.npy``. Each size is
written to the JSON as soon as it finishes, so a stopped run keeps what it measured. Run it with
one BLAS thread: exact search is then timed as one serving thread would run it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
M, EF_CONSTRUCTION, K = 16, 100, 10
EFS = (16, 32, 64, 128)


def clustered(n: int, dim: int, seed: int, centers: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for lo in range(0, n, 100_000):  # in blocks: bounded temporary memory at 1M
        hi = min(n, lo + 100_000)
        noise = rng.standard_normal((hi - lo, dim)).astype(np.float32) / np.sqrt(dim)
        out[lo:hi] = c[rng.integers(0, centers, hi - lo)] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def exact_topk(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(queries), k), np.int64)
    for lo in range(0, len(queries), 64):
        s = queries[lo : lo + 64] @ data.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, 1), axis=1)
        out[lo : lo + 64] = np.take_along_axis(part, order, 1)
    return out


class Faiss:
    name = "faiss"

    def __init__(self, dim: int, capacity: int, threads: int) -> None:
        import faiss

        self.faiss, self.threads = faiss, threads
        self.index = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION

    def add(self, x: np.ndarray, start: int) -> None:
        self.faiss.omp_set_num_threads(self.threads if len(x) > 1 else 1)
        self.index.add(x)  # ids are insertion order, so they equal ``start + i`` here

    def prepare_search(self, ef: int) -> None:
        self.faiss.omp_set_num_threads(1)
        self.index.hnsw.efSearch = ef

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.index.search(q, k)[1]


class Hnswlib:
    name = "hnswlib"

    def __init__(self, dim: int, capacity: int, threads: int) -> None:
        import hnswlib

        self.threads = threads
        self.index = hnswlib.Index(space="ip", dim=dim)
        self.index.init_index(max_elements=capacity, ef_construction=EF_CONSTRUCTION, M=M)

    def add(self, x: np.ndarray, start: int) -> None:
        ids = np.arange(start, start + len(x))
        self.index.add_items(x, ids, num_threads=self.threads if len(x) > 1 else 1)

    def prepare_search(self, ef: int) -> None:
        self.index.set_ef(ef)

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.index.knn_query(q, k=k, num_threads=1)[0]


class Usearch:
    name = "usearch"

    def __init__(self, dim: int, capacity: int, threads: int) -> None:
        from usearch.index import Index

        self.threads = threads
        self.index = Index(
            ndim=dim, metric="ip", dtype="f32", connectivity=M, expansion_add=EF_CONSTRUCTION
        )

    def add(self, x: np.ndarray, start: int) -> None:
        ids = np.arange(start, start + len(x))
        self.index.add(ids, x, threads=self.threads if len(x) > 1 else 1)

    def prepare_search(self, ef: int) -> None:
        self.index.expansion_search = ef

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        return np.atleast_2d(self.index.search(q, k, threads=1).keys)


LIBRARIES: dict[str, Callable[[int, int, int], Any]] = {
    "faiss": Faiss,
    "hnswlib": Hnswlib,
    "usearch": Usearch,
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    a = np.asarray(samples_s) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def time_exact(data: np.ndarray, queries: np.ndarray) -> dict[str, float]:
    samples = []
    for q in queries:
        t = time.perf_counter()
        s = data @ q
        np.argpartition(-s, K - 1)[:K]
        samples.append(time.perf_counter() - t)
    p50, p99 = percentiles(samples)
    return {"search_p50_ms": p50, "search_p99_ms": p99}


def run_library(
    lib: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, threads: int, adds: int
) -> dict[str, Any]:
    n, dim = data.shape
    gc.collect()
    before = rss_mb()
    index = LIBRARIES[lib](dim, n + adds, threads)
    t = time.perf_counter()
    for lo in range(0, n, 50_000):
        index.add(data[lo : lo + 50_000], lo)
    build_s = time.perf_counter() - t
    memory = rss_mb() - before
    extra = clustered(adds, dim, seed=99)
    add_samples = []
    for i in range(adds):  # one vector at a time into the built index, as an API add would
        t = time.perf_counter()
        index.add(extra[i : i + 1], n + i)
        add_samples.append(time.perf_counter() - t)
    add_p50, add_p99 = percentiles(add_samples)
    row: dict[str, Any] = {
        "library": lib,
        "build_s": build_s,
        "build_vectors_per_s": n / build_s,
        "index_mb": memory,
        "add_one_p50_ms": add_p50,
        "add_one_p99_ms": add_p99,
        "by_ef": [],
    }
    for ef in EFS:
        index.prepare_search(ef)
        found, samples = [], []
        for q in queries:
            t = time.perf_counter()
            found.append(index.search(q[None, :], K)[0])
            samples.append(time.perf_counter() - t)
        p50, p99 = percentiles(samples)
        row["by_ef"].append(
            {
                "ef": ef,
                "recall_at_10": recall(np.stack(found), truth),
                "search_p50_ms": p50,
                "search_p99_ms": p99,
            }
        )
    del index
    gc.collect()
    return row


def one_size(
    data: np.ndarray, queries: np.ndarray, libs: list[str], threads: int, adds: int
) -> dict[str, Any]:
    t = time.perf_counter()
    truth = exact_topk(data, queries, K)
    result: dict[str, Any] = {
        "vectors": len(data),
        "dim": data.shape[1],
        "queries": len(queries),
        "exact": {**time_exact(data, queries[:200]), "ground_truth_s": time.perf_counter() - t},
        "libraries": [],
    }
    for lib in libs:
        result["libraries"].append(run_library(lib, data, queries, truth, threads, adds))
    print_size(result)
    return result


def print_size(result: dict[str, Any]) -> None:
    ex = result["exact"]
    print(
        f"\n{result['vectors']:,} x {result['dim']}  ({result['queries']} queries; exact search "
        f"p50 {ex['search_p50_ms']:.2f} ms, p99 {ex['search_p99_ms']:.2f} ms)"
    )
    print(
        f"{'library':8} {'build s':>8} {'vec/s':>9} {'MB':>6} {'add1 p50':>9} {'add1 p99':>9}"
        "  " + "  ".join(f"ef={ef}: R@10 p50ms p99ms" for ef in EFS)
    )
    for r in result["libraries"]:
        cells = "  ".join(
            f"      {e['recall_at_10']:.3f} {e['search_p50_ms']:5.3f} {e['search_p99_ms']:5.3f}"
            for e in r["by_ef"]
        )
        print(
            f"{r['library']:8} {r['build_s']:8.1f} {r['build_vectors_per_s']:9.0f} "
            f"{r['index_mb']:6.0f} {r['add_one_p50_ms']:9.3f} {r['add_one_p99_ms']:9.3f}  {cells}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--big-queries", type=int, default=200, help="queries at >= 1M vectors")
    p.add_argument("--threads", type=int, default=2, help="build threads (search uses 1)")
    p.add_argument("--adds", type=int, default=200, help="single-vector adds timed per index")
    p.add_argument("--libs", nargs="+", default=list(LIBRARIES), choices=list(LIBRARIES))
    p.add_argument("--real", action="append", default=[], help="NAME=PATH.npy, [N, D] vectors")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default: results folder)")
    args = p.parse_args()

    machine = platform.node() or "machine"
    out = args.out or (
        ROOT
        / "loadtest"
        / "results"
        / f"{datetime.now(UTC):%Y-%m-%d}-{machine}"
        / "vector_search.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": "python -m loadtest.benchmarks.vector_search " + " ".join(os.sys.argv[1:]),
        "machine": {
            "node": machine,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        },
        "settings": {
            "M": M,
            "ef_construction": EF_CONSTRUCTION,
            "k": K,
            "efs": list(EFS),
            "build_threads": args.threads,
            "search_threads": 1,
        },
        "synthetic": [],
        "real": [],
    }
    for n in args.sizes:
        data = clustered(n, args.dim, seed=n)
        queries = clustered(args.big_queries if n >= 1_000_000 else args.queries, args.dim, 7)
        report["synthetic"].append(one_size(data, queries, args.libs, args.threads, args.adds))
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out.write_text(json.dumps(report, indent=1))
        del data
        gc.collect()
    for spec in args.real:
        name, path = spec.split("=", 1)
        vectors = np.load(path).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rng = np.random.default_rng(0)
        order = rng.permutation(len(vectors))
        nq = min(args.queries, len(vectors) // 10)
        queries, data = vectors[order[:nq]], vectors[order[nq:]]
        print(f"\nreal embeddings: {name}")
        entry = {
            "name": name,
            "source": path,
            **one_size(data, queries, args.libs, args.threads, args.adds),
        }
        report["real"].append(entry)
        out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
