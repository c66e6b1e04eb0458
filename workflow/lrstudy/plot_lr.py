"""The learning-rate figure of a section (with a momentum panel where a run cycles it) and the
legend-only image that stands beside it (the source's N_legend images)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from lrstudy import plot_base  # noqa: E402
from lrstudy.plot_base import (  # noqa: E402
    LEGEND_WIDTH,
    LR_LOG_RATIO,
    LR_MOMENTUM_SIZE,
    LR_SIZE,
    Tables,
    band,
    draw_stops,
    empty_note,
    plot_band,
    spans_decades,
    stop_handle,
    stop_points,
)


def draw_lr(runs: list[str], tables: Tables, colors: dict, title: str, path: Path, labels: dict):
    """The LR of each run against the step; below, where a shown run cycles its momentum, the
    momentum of every run (fastai's schedule plot shows the two together)."""
    cycled = [run for run in runs if tables.varying_momentum(run)]
    if cycled:
        fig, (ax, mom) = plt.subplots(
            2,
            1,
            figsize=LR_MOMENTUM_SIZE,
            sharex=True,
            constrained_layout=True,
            gridspec_kw={"height_ratios": [3, 1]},
        )
    else:
        fig, ax = plt.subplots(figsize=LR_SIZE, constrained_layout=True)
    values, stops = [], []
    for i, run in enumerate(runs):
        frame = tables.run_steps(run)
        if not len(frame):
            continue
        stats = band(frame, "step", "lr")
        # Each later run a thinner line on top, so equal schedules (max_lr 1 vs 1.1) both show.
        width = (2.6, 1.5, 1.0)[min(i, 2)]
        plot_band(ax, stats, "step", colors[run], label=labels[run], linewidth=width, zorder=2 + i)
        stops += stop_points(tables, run, frame, "step", "lr", colors[run])
        values += list(stats["mean"])
        if cycled and frame["momentum"].notna().any():
            plot_band(
                mom,
                band(frame, "step", "momentum"),
                "step",
                colors[run],
                linewidth=width,
                zorder=2 + i,
            )
    if not values:
        empty_note(ax)
    elif spans_decades(values, LR_LOG_RATIO):
        ax.set_yscale("log")
    draw_stops(ax, stops)
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    if values:
        ax.legend(loc="best", framealpha=0.8)
    if cycled:
        mom.set_ylabel("momentum")
        mom.set_xlabel("step (batches)")
    else:
        ax.set_xlabel("step (batches)")
    plot_base.save(fig, path)


def draw_legend(runs: list[str], tables: Tables, colors: dict, path: Path, labels: dict):
    """The runs' colours alone, to stand beside an LR figure (the source's N_legend images)."""
    handles = [Line2D([], [], color=colors[r], linewidth=2.5, label=labels[r]) for r in runs]
    if any(tables.diverged_seeds(r) for r in runs):
        handles.append(stop_handle("diverged"))
    if not handles:
        handles = [Line2D([], [], color="none", label="no runs")]
    fontsize = 8.0
    while True:
        fig = plt.figure(figsize=(LEGEND_WIDTH, 0.3 + 0.24 * len(handles)))
        legend = fig.legend(
            handles=handles,
            loc="center",
            frameon=False,
            fontsize=fontsize,
            handlelength=1.6,
            borderaxespad=0.1,
            handletextpad=0.5,
        )
        fig.canvas.draw()
        width = legend.get_window_extent().width
        if width <= fig.bbox.width * 0.97 or fontsize <= 4.5:
            break
        plt.close(fig)
        fontsize -= 0.5
    height = legend.get_window_extent().height / fig.dpi + 0.1
    fig.set_size_inches(LEGEND_WIDTH, max(height, 0.3))
    plot_base.save(fig, path)
