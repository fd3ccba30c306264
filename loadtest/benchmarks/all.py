"""Every CPU benchmark of the peer comparison, one after another, into one results folder.

    python -m loadtest.benchmarks.all --seconds 8

Runs :mod:`peers` (Fovea vs naive FastAPI vs LitServe, small and phone photo, in-process
ceilings), :mod:`cpu_split` (Fovea's CPU per image by kind of thread), :mod:`tasks` (every
task served vs in-process, captions/s c=8 over c=1), :mod:`overload` (3x capacity, time to
503, RSS) and :mod:`decoders` (speed and parity), all
writing under ``loadtest/results/<date>-<machine>/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtest.benchmarks import cpu_split, decoders, overload, peers, servers, tasks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell")
    p.add_argument("--out", type=Path)
    p.add_argument("--machine")
    args = p.parse_args(argv)
    out = ["--out", str(servers.results_dir(args.out, args.machine))]
    seconds = ["--seconds", f"{args.seconds:g}"]
    for name, run, extra in (
        ("peers", peers.main, seconds),
        ("cpu_split", cpu_split.main, seconds),
        ("tasks", tasks.main, seconds),
        ("overload", overload.main, []),
        ("decoders", decoders.main, []),
    ):
        print(f"\n######## {name}", flush=True)
        if run([*extra, *out]) != 0:
            print(f"{name} failed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
