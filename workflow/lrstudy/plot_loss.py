"""The loss figures: train & valid loss of a section (draw_loss), one split's loss alone (the best
runs' test loss, draw_split_loss), and the panel both are drawn on (loss_panel), which
lrstudy.plot_range's range-test figure shares."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from lrstudy import plot_base  # noqa: E402
from lrstudy.layout import LEVEL_TEXT  # noqa: E402
from lrstudy.plot_base import (  # noqa: E402
    AXIS,
    LOSS_SIZE,
    Tables,
    band,
    before_first_stop,
    clip_loss_axis,
    draw_stops,
    empty_note,
    plot_band,
    stop_handle,
    stop_points,
)


def style_handles(tables: Tables, runs: list[str], valid_label="valid loss") -> list:
    handles = [
        Line2D([], [], color="0.2", label="train loss (smoothed)"),
        Line2D([], [], color="0.2", alpha=0.3, linewidth=0.8, label="train loss (raw)"),
        Line2D([], [], color="0.2", linestyle="--", marker="o", markersize=3, label=valid_label),
    ]
    if any(len(tables.seeds(r)) > 1 for r in runs):
        handles.append(Patch(color="0.2", alpha=0.2, label=f"{LEVEL_TEXT} CI over seeds"))
    if any(tables.diverged_seeds(r) for r in runs):
        handles.append(stop_handle("diverged (stopped; ^: above the axis)"))
    return handles


def loss_panel(
    ax,
    runs: list[str],
    tables: Tables,
    colors: dict,
    draw_run,
    xlabel="step (batches)",
    top_factor=3.0,
    log_x=False,
) -> list:
    """A loss panel across runs. `draw_run(ax, run, color)` draws one run (its lines and seed
    bands) and returns (curves, stop points, legend handles), or None for a run without rows;
    then every panel is finished alike: a note when nothing was drawn, the loss axis clipped
    (clip_loss_axis), an x where each diverged seed stopped, the x label. Returns the handles."""
    curves, stops, handles = [], [], []
    for run in runs:
        drawn = draw_run(ax, run, colors[run])
        if drawn is None:
            continue
        curves += drawn[0]
        stops += drawn[1]
        handles += drawn[2]
    if not curves:
        empty_note(ax)
    elif log_x:
        ax.set_xscale("log")
    clip_loss_axis(ax, curves, top_factor=top_factor)
    draw_stops(ax, stops)
    ax.set_xlabel(xlabel)
    return handles


def draw_train_valid(
    ax,
    runs: list[str],
    tables: Tables,
    colors: dict,
    labels: dict,
    valid_split="valid",
    top_factor=3.0,
    until_first_stop=False,
) -> list:
    """Train loss (smoothed line, raw faint) and valid loss (markers) against the step; with
    `until_first_stop` each run's curves end where its first diverged seed stopped."""

    def draw_run(ax, run, color):
        every = tables.run_steps(run)
        if not len(every):
            return None
        frame = before_first_stop(tables, run, every) if until_first_stop else every
        raw = band(frame, "step", "train_loss")
        ax.plot(raw["step"], raw["mean"], color=color, alpha=0.2, linewidth=0.6)
        smooth = band(frame, "step", "smoothed_loss")
        plot_band(ax, smooth, "step", color)
        stops = stop_points(tables, run, every, "step", "smoothed_loss", color)
        curves = [smooth["mean"].to_numpy()]
        for split, style in ((valid_split, "--"), ("range_valid", ":")):
            evals = tables.run_evals(run, split)
            if until_first_stop:
                evals = before_first_stop(tables, run, evals)
            if len(evals):
                stats = band(evals, "step", "loss")
                plot_band(ax, stats, "step", color, linestyle=style, marker="o", markersize=3)
                curves.append(stats["mean"].to_numpy())
        return curves, stops, [Line2D([], [], color=color, linewidth=2.5, label=labels[run])]

    return loss_panel(ax, runs, tables, colors, draw_run, top_factor=top_factor)


def draw_split(ax, runs: list[str], tables: Tables, colors: dict, labels: dict, split: str) -> list:
    """One evaluation split's loss (markers) against the step; labels end with the final loss."""

    def draw_run(ax, run, color):
        evals = tables.run_evals(run, split)
        if not len(evals):
            return None
        stats = band(evals, "step", "loss")
        final = stats["mean"].dropna()
        plot_band(ax, stats, "step", color, marker="o", markersize=3)
        stops = stop_points(tables, run, evals, "step", "loss", color)
        tail = f", final {final.iloc[-1]:.3g}" if len(final) else ""
        handle = Line2D([], [], color=color, marker="o", markersize=3, label=f"{labels[run]}{tail}")
        return [stats["mean"].to_numpy()], stops, [handle]

    return loss_panel(ax, runs, tables, colors, draw_run)


def finish_loss_figure(fig, ax, title: str, handles: list, path: Path) -> None:
    ax.set_title(title)
    if handles:
        ncol = 2 if len(handles) > 6 else 1
        ax.legend(handles=handles, loc="best", ncol=ncol, framealpha=0.85)
    plot_base.save(fig, path)


def draw_loss(runs: list[str], tables: Tables, colors: dict, title: str, path: Path, labels: dict):
    """The train & valid loss figure of a section."""
    fig, ax = plt.subplots(figsize=LOSS_SIZE, constrained_layout=True)
    run_handles = draw_train_valid(ax, runs, tables, colors, labels)
    ax.set_ylabel(AXIS["loss"])
    finish_loss_figure(fig, ax, title, run_handles + style_handles(tables, runs), path)


def draw_split_loss(
    runs: list[str],
    tables: Tables,
    colors: dict,
    title: str,
    path: Path,
    labels: dict,
    split="test",
    split_label=None,
):
    """One split's loss alone (the best runs' test loss)."""
    fig, ax = plt.subplots(figsize=LOSS_SIZE, constrained_layout=True)
    handles = draw_split(ax, runs, tables, colors, labels, split)
    ax.set_ylabel(split_label or f"{split} {AXIS['loss']}")
    finish_loss_figure(fig, ax, title, handles, path)
