"""A PNG of throughput and latency percentiles against concurrency or request rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from loadtest.report import UNITS
from loadtest.runner import Step

_PERCENTILES = {50: ("C1", ":"), 90: ("C2", "-."), 99: ("C3", "-")}


def save(
    series: Mapping[str, Sequence[Step]],
    path: Path,
    *,
    title: str = "",
    budget_ms: float | None = None,
) -> None:
    """One line per series (e.g. one per server) in each panel; all steps of one mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    several = len(series) > 1
    mode = next(s.mode for steps in series.values() for s in steps)
    targets = sorted({s.target for steps in series.values() for s in steps})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for i, (label, steps) in enumerate(series.items()):
        x = [s.target for s in steps]
        left.plot(x, [s.total.throughput for s in steps], "o-", color=f"C{i}", label=label)
        for p, (color, style) in _PERCENTILES.items():
            y = [s.total.latency_ms.at(p) if s.total.latency_ms else float("nan") for s in steps]
            right.plot(x, y, style, marker=".", color=f"C{i}" if several else color,
                       label=f"{label} p{p}" if several else f"p{p}")
    if mode == "rate":
        left.plot(targets, targets, color="grey", lw=0.8, ls="--", label="offered")
    if budget_ms is not None:
        right.axhline(budget_ms, color="red", lw=0.8, ls="--", label="budget")
    left.set(xlabel=UNITS[mode], ylabel="successful requests/s", title="throughput")
    left.set_ylim(bottom=0)
    right.set(xlabel=UNITS[mode], ylabel="latency (ms, log scale)", title="latency")
    right.set_yscale("log")
    right.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    right.yaxis.set_major_formatter(ScalarFormatter())
    right.yaxis.set_minor_formatter(NullFormatter())
    for ax in (left, right):
        if mode == "concurrency" and targets[-1] / targets[0] >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(targets, [f"{t:g}" for t in targets])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
