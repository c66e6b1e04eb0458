"""The report's figures (PNG, matplotlib Agg), all of them in one call.

    python -m lrstudy.plots --tables results/tables --runs results/runs \
        --config-json '<config as JSON>' --out results/figures

Per source section (config `report.sections`; its runs in the section's order) a learning-rate
figure, a train & valid loss figure and, where the source has one, a legend-only image; then the
three best families at their tuned setting on their confirmation seeds (results/tables/best.csv,
the verdict's first rows): LR, loss and test loss, each labelled with its verdict word. File
names are the source's (lrstudy.layout.SECTION_FIGURES). Several seeds: the mean line and a
shaded 95 % t-interval band (mean +- t(0.975, n-1) sd / sqrt(n)). A diverged run's curves stop
where it stopped, marked with an x, and its label says "(diverged)"; a run that never learned says
"(collapsed)". Where a shown run's momentum changes (OneCycleLR, CyclicLR), its LR figure has a
momentum panel below. The verdict's own figures (tuning curves, paired differences) are
lrstudy.verdict_plots'.

Sizes: at 200 dpi the PNG is twice the width the report shows it at (LR 400 px -> 4 in, loss
550 px -> 5.5 in, legends 150 px -> 1.5 in), so text reads at the same size in every figure.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

from lrstudy import losses  # noqa: E402
from lrstudy.io import atomic_path  # noqa: E402
from lrstudy.layout import (  # noqa: E402
    BEST_TEST_FIGURE,
    SECTION_FIGURES,
    extra_figures,
    format_value,
    section_title,
)

DPI = 200
LR_SIZE = (4.0, 3.0)
LR_MOMENTUM_SIZE = (4.0, 3.8)
LOSS_SIZE = (5.5, 3.6)
RANGE_LOSS_SIZE = (5.5, 6.4)
# A range test's loss axes end at this x its first losses (where every LR is still too small to
# learn): the dip below that is what a reader needs; a blow-up above it ends in an arrow.
RANGE_TOP = 1.3
LEGEND_WIDTH = 1.5
# The loss axes name the study's loss (config `loss`, lrstudy.losses.label); draw_all sets it.
AXIS = {"loss": losses.label(None)}
# An axis whose positive values span more than this ratio is drawn on a log scale: the loss from
# 1.5 decades, the LR from a bit over two (so a 0.01..1 CyclicLR keeps its triangles).
LOG_RATIO = 30.0
LR_LOG_RATIO = 150.0
SUGGESTION_STYLES = {"minimum": ":", "steep": "--", "valley": "-", "slide": "-."}
SUGGESTION_COLORS = {
    "minimum": "#7f7f7f",
    "steep": "#d62728",
    "valley": "#2ca02c",
    "slide": "#9467bd",
}
STYLE = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.3,
    "savefig.dpi": DPI,
}


# ------------------------------------------------------------------------------------ data
class Tables:
    """The aggregate tables, with non-finite values as NaN, and per-run helpers."""

    def __init__(
        self,
        steps: pd.DataFrame,
        evals: pd.DataFrame,
        summary: pd.DataFrame,
        best: pd.DataFrame,
        tuning: pd.DataFrame | None = None,
        verdict: pd.DataFrame | None = None,
        suggestions: dict | None = None,
        runs_dir: Path | None = None,
    ):
        self.steps = steps.replace([np.inf, -np.inf], np.nan)
        self.evals = evals.replace([np.inf, -np.inf], np.nan)
        self.summary = summary
        self.best = best
        self.tuning, self.verdict = tuning, verdict
        self.suggestions = suggestions or {}
        self.runs_dir = runs_dir

    @classmethod
    def read(cls, folder: Path, runs_dir: Path | None, range_runs: list[str]) -> Tables:
        folder = Path(folder)
        names = ("steps", "evals", "summary", "best", "tuning", "verdict")
        frames = [pd.read_csv(folder / f"{name}.csv") for name in names]
        suggestions = {}
        for run in range_runs:
            path = Path(runs_dir) / run / "suggestion.json" if runs_dir else None
            if path is not None and path.is_file():
                suggestions[run] = json.loads(path.read_text())
        return cls(*frames, suggestions=suggestions, runs_dir=runs_dir)

    def record(self, run: str) -> dict | None:
        """run.json of the run's first seed that has one (None without a runs folder)."""
        for seed in self.seeds(run) if self.runs_dir else ():
            path = Path(self.runs_dir) / run / f"seed{seed}" / "run.json"
            if path.is_file():
                return json.loads(path.read_text())
        return None

    def run_steps(self, run: str) -> pd.DataFrame:
        return self.steps[self.steps["run"] == run].sort_values(["seed", "step"])

    def run_evals(self, run: str, split: str) -> pd.DataFrame:
        frame = self.evals
        return frame[(frame["run"] == run) & (frame["split"] == split)].sort_values(
            ["seed", "step"]
        )

    def seeds(self, run: str) -> list:
        rows = self.summary[self.summary["run"] == run]
        return sorted(rows["seed"]) if len(rows) else sorted(self.run_steps(run)["seed"].unique())

    def seeds_with(self, run: str, status: str) -> list:
        rows = self.summary[(self.summary["run"] == run) & (self.summary["status"] == status)]
        return sorted(rows["seed"])

    def diverged_seeds(self, run: str) -> list:
        return self.seeds_with(run, "diverged")

    def best_label(self, run: str) -> str:
        """`#2 step x1: undecided`: a best run's rank, family, chosen multiplier, verdict word."""
        row = self.best[self.best["run"] == run].iloc[0]
        return (
            f"#{row['rank']} {row['family']} x{format_value(row['multiplier'])}: {row['verdict']}"
        )

    def varying_momentum(self, run: str) -> bool:
        """Whether the run's momentum changes within the run (it is cycled)."""
        if "momentum" not in self.steps:
            return False
        values = self.run_steps(run)["momentum"].dropna()
        return len(values) > 1 and values.max() - values.min() > 1e-12


def band(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The mean of `y` over seeds at each `x` (NaN-aware), its 95 % t-interval (`low`, `high`; NaN
    where fewer than two seeds count) and the seeds counted (`n`)."""
    grouped = frame.groupby(x)[y]
    mean, sd, n = grouped.mean(), grouped.std(), grouped.count()
    half = (
        pd.Series(scipy_stats.t.ppf(0.975, (n - 1).where(n > 1)), index=n.index) * sd / np.sqrt(n)
    )
    return pd.DataFrame(
        {"mean": mean, "low": mean - half, "high": mean + half, "n": n}
    ).reset_index()


def spans_decades(values, ratio: float = LOG_RATIO) -> bool:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    return len(values) > 1 and values.max() / values.min() > ratio


def run_colors(config: dict, more: list[str] = ()) -> dict:
    """One colour per run, the same in every figure (the config's run order, then `more`)."""
    names = list(dict.fromkeys([*config["runs"], *more]))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def label(run: str, tables: Tables, prefix: str = "", name: str | None = None) -> str:
    """The run's name (or `name`), and how many of its seeds diverged or collapsed (never
    learned)."""
    seeds, text = tables.seeds(run), f"{prefix}{name or run}"
    for status in ("diverged", "collapsed"):
        hit = tables.seeds_with(run, status)
        if hit:
            text += (
                f" ({status})" if len(hit) == len(seeds) else f" ({status} {len(hit)}/{len(seeds)})"
            )
    return text


# ------------------------------------------------------------------------------------ drawing
def plot_band(ax, stats: pd.DataFrame, x: str, color, **kwargs):
    """The mean line and, where several seeds count, the 95 % t-interval band."""
    line = ax.plot(stats[x], stats["mean"], color=color, **kwargs)
    if (stats["n"] > 1).any():
        ax.fill_between(stats[x], stats["low"], stats["high"], color=color, alpha=0.2, linewidth=0)
    return line


def stop_points(tables: Tables, run: str, frame: pd.DataFrame, x: str, y: str, color) -> list:
    """(x, y, color) where each diverged seed stopped: its last point with a finite value."""
    points = []
    for seed in tables.diverged_seeds(run):
        rows = frame[(frame["seed"] == seed) & frame[y].notna()]
        if len(rows):
            points.append((float(rows.iloc[-1][x]), float(rows.iloc[-1][y]), color))
    return points


def first_stop(tables: Tables, run: str) -> float:
    """The step where the run's first diverged seed stopped (inf where none did)."""
    steps = tables.run_steps(run)
    stops = [steps.loc[steps["seed"] == seed, "step"].max() for seed in tables.diverged_seeds(run)]
    return min([s for s in stops if pd.notna(s)], default=math.inf)


def before_first_stop(tables: Tables, run: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows (steps or evaluations) before the run's first stop: the seeds' mean and band end
    where the first seed ends, so that seed's blow-up is no spike of the mean."""
    return frame[frame["step"] < first_stop(tables, run)]


def draw_stops(ax, points: list) -> None:
    """A mark at each stop, once the axis limits are set: an x where the stopped loss is in view,
    an arrow (^) on the top edge where it lies above it (a blown-up loss), so the mark stays in view
    and the layout is not stretched."""
    if not points:
        return
    low, high = ax.get_ylim()
    for x, y, color in points:
        above = y > high
        y = min(max(y, low), high)
        ax.plot(
            [x],
            [y],
            marker="^" if above else "x",
            markersize=8,
            markeredgewidth=2.2,
            color=color,
            linestyle="none",
            clip_on=False,
            zorder=5,
        )
    ax.set_ylim(low, high)


def minor_label(value, _pos=None) -> str:
    """Plain numbers on a log axis's minor ticks at 2 and 5 times a power of ten (0.2, 5, ...)."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if mantissa in (2, 5) else ""


def clip_loss_axis(ax, series: list, top_factor=3.0):
    """Log scale where the loss spans decades; the top at `top_factor` x the highest of the curves'
    first losses (their first 2 %), so a blow-up does not squash the curves (its x mark stays in
    view at the edge)."""
    series = [s[np.isfinite(s) & (s > 0)] for s in (np.asarray(v, dtype=float) for v in series)]
    series = [s for s in series if len(s)]
    if not series:
        return
    values = np.concatenate(series)
    first = max(float(np.max(s[: max(1, len(s) // 50)])) for s in series)
    top = min(values.max() * 1.1, top_factor * first)
    bottom = values.min()
    if spans_decades([bottom, top]):
        ax.set_yscale("log")
        ax.set_ylim(bottom / 1.3, top * 1.3)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(minor_label))
    else:
        pad = 0.05 * (top - bottom or 1)
        ax.set_ylim(max(0, bottom - pad), top + pad)


def empty_note(ax, text="no data for these runs"):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


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
    save(fig, path)


def stop_handle(label: str) -> Line2D:
    """The legend entry of the x that marks where a diverged run stopped (draw_stops; an arrow ^
    on the top edge where its loss lies above the axis)."""
    return Line2D([], [], color="0.2", marker="x", markeredgewidth=2, linestyle="none", label=label)


def style_handles(tables: Tables, runs: list[str], valid_label="valid loss") -> list:
    handles = [
        Line2D([], [], color="0.2", label="train loss (smoothed)"),
        Line2D([], [], color="0.2", alpha=0.3, linewidth=0.8, label="train loss (raw)"),
        Line2D([], [], color="0.2", linestyle="--", marker="o", markersize=3, label=valid_label),
    ]
    if any(len(tables.seeds(r)) > 1 for r in runs):
        handles.append(Patch(color="0.2", alpha=0.2, label="95 % CI over seeds"))
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
    save(fig, path)


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


def draw_range_loss(
    runs: list[str], tables: Tables, colors: dict, title: str, path: Path, labels: dict
):
    """Top: train & valid loss against the step. Bottom: the loss against the LR (log axis), the
    classic range-test view, with the suggested LRs (suggestion.json) as vertical lines."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=RANGE_LOSS_SIZE, constrained_layout=True)
    run_handles = draw_train_valid(
        top, runs, tables, colors, labels, top_factor=RANGE_TOP, until_first_stop=True
    )
    top.set_ylabel(AXIS["loss"])
    top.set_title(title)
    if run_handles:
        top.legend(handles=run_handles + style_handles(tables, runs), loc="best", framealpha=0.85)

    def draw_run(ax, run, color):
        every = tables.run_steps(run)
        if not len(every):
            return None
        frame = before_first_stop(tables, run, every)
        lr = band(every, "step", "lr")[["step", "mean"]].rename(columns={"mean": "lr"})
        raw = band(frame, "step", "train_loss").merge(lr, on="step")
        smooth = band(frame, "step", "smoothed_loss").merge(raw[["step", "lr"]], on="step")
        ax.plot(raw["lr"], raw["mean"], color=color, alpha=0.2, linewidth=0.6)
        plot_band(ax, smooth, "lr", color)
        stops = stop_points(tables, run, every, "lr", "smoothed_loss", color)
        evals = tables.run_evals(run, "range_valid")
        if len(evals):
            merged = band(evals, "step", "loss").merge(raw[["step", "lr"]], on="step")
            plot_band(ax, merged, "lr", color, linestyle=":", marker="o", markersize=3)
        handles = [Line2D([], [], color=color, label=f"{labels[run]}: smoothed train loss")]
        return (
            [smooth["mean"].to_numpy()],
            stops,
            handles + suggestion_lines(ax, tables.suggestions.get(run), run, runs, color),
        )

    handles = loss_panel(
        bottom,
        runs,
        tables,
        colors,
        draw_run,
        xlabel="learning rate (log scale)",
        top_factor=RANGE_TOP,
        log_x=True,
    )
    bottom.set_ylabel(f"train {AXIS['loss']}")
    bottom.set_title("loss against learning rate, suggested LRs")
    if handles:
        bottom.legend(handles=handles, loc="upper left", framealpha=0.85)
    save(fig, path)


def suggestion_lines(ax, suggestion: dict | None, run: str, runs: list[str], color) -> list:
    """The range test's suggested LRs (suggestion.json) as vertical lines; their legend handles."""
    handles = []
    sugg = (suggestion or {}).get("suggestions") or {}
    for rule, lr in sugg.items():
        if lr is None or not np.isfinite(lr) or lr <= 0:
            continue
        style = {
            "color": SUGGESTION_COLORS.get(rule, color),
            "linestyle": SUGGESTION_STYLES.get(rule, "-"),
        }
        ax.axvline(lr, linewidth=1.2, **style)
        name = f"{rule} {lr:.2g}" if len(runs) == 1 else f"{run} {rule} {lr:.2g}"
        handles.append(Line2D([], [], label=f"suggested: {name}", **style))
    return handles


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
    save(fig, path)


def save(fig, path: Path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)


# ------------------------------------------------------------------------------------ all figures
def best_runs(tables: Tables) -> list[str]:
    best = tables.best.sort_values("rank") if "rank" in tables.best else tables.best
    return [str(r) for r in best["run"]]


def draw_all(config: dict, tables: Tables, out: Path) -> list[Path]:
    """Every figure of the report into `out`; returns their paths."""
    plt.rcParams.update(STYLE)
    AXIS["loss"] = losses.label(config.get("loss"))
    out = Path(out)
    colors = run_colors(config, best_runs(tables))
    sections = dict(config["report"]["sections"])
    written = []
    for section, (lr_name, loss_name, legend_name) in SECTION_FIGURES.items():
        if section == "best":
            runs = best_runs(tables)
            title = f"best {len(runs)} tuned families, confirmation seeds"
            labels = {r: label(r, tables, name=tables.best_label(r)) for r in runs}
        else:
            runs = list(sections[section])
            records = {r: tables.record(r) for r in runs}
            title = section_title(section, runs, config, records)
            labels = {r: label(r, tables) for r in runs}
        draw_lr(runs, tables, colors, f"{title}: learning rate", out / f"{lr_name}.png", labels)
        written.append(out / f"{lr_name}.png")
        if section == "range_test":
            draw_range_loss(
                runs,
                tables,
                colors,
                f"{title}: train & valid loss",
                out / f"{loss_name}.png",
                labels,
            )
        else:
            draw_loss(
                runs,
                tables,
                colors,
                f"{title}: train & valid loss",
                out / f"{loss_name}.png",
                labels,
            )
        written.append(out / f"{loss_name}.png")
        if legend_name:
            draw_legend(runs, tables, colors, out / f"{legend_name}.png", labels)
            written.append(out / f"{legend_name}.png")
        if section == "best":
            draw_split_loss(
                runs, tables, colors, f"{title}: test loss", out / f"{BEST_TEST_FIGURE}.png", labels
            )
            written.append(out / f"{BEST_TEST_FIGURE}.png")
    from lrstudy import verdict_plots

    written += verdict_plots.draw(tables.tuning, tables.verdict, out, save)
    for section, runs in config["report"].get("extra_sections", {}).items():
        lr_name, loss_name = extra_figures(section)
        labels = {r: label(r, tables) for r in runs}
        title = section.replace("_", " ")
        draw_lr(runs, tables, colors, f"{title}: learning rate", out / f"{lr_name}.png", labels)
        draw_loss(
            runs, tables, colors, f"{title}: train & valid loss", out / f"{loss_name}.png", labels
        )
        written += [out / f"{lr_name}.png", out / f"{loss_name}.png"]
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Draw every figure of the report.")
    parser.add_argument(
        "--tables", type=Path, required=True, help="folder of steps/evals/summary/best.csv"
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="folder of the run folders (range-test suggestion.json)",
    )
    parser.add_argument(
        "--config-json",
        required=True,
        help="the workflow config (at least `runs` and `report`) as JSON",
    )
    parser.add_argument("--out", type=Path, required=True, help="figures folder")
    args = parser.parse_args(argv)
    config = json.loads(args.config_json)
    tables = Tables.read(args.tables, args.runs, list(config["report"]["sections"]["range_test"]))
    for path in draw_all(config, tables, args.out):
        print(path)


if __name__ == "__main__":
    main()
