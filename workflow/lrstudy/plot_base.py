"""What every figure of lrstudy.plots shares: the tables it draws from (Tables), the seeds' band
(band: the mean and its t-interval at lrstudy.layout.CONFIDENCE, the interval the captions
describe), colours and labels, the loss axis, the marks where diverged seeds stopped, and save.

Sizes: at 200 dpi the PNG is twice the width the report shows it at (LR 400 px -> 4 in, loss
550 px -> 5.5 in, legends 150 px -> 1.5 in), so text reads at the same size in every figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

from lrstudy import losses  # noqa: E402
from lrstudy.io import atomic_path  # noqa: E402
from lrstudy.layout import (  # noqa: E402
    BAND_QUANTILE,
    first_records,
    format_value,
    suggestions_by_run,
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
# The aggregate tables lrstudy.plots reads (results/tables/NAME.csv, each passed by the rule).
TABLE_NAMES = ("steps", "evals", "summary", "best", "tuning", "verdict")


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
        records: dict | None = None,
    ):
        self.steps = steps.replace([np.inf, -np.inf], np.nan)
        self.evals = evals.replace([np.inf, -np.inf], np.nan)
        self.summary = summary
        self.best = best
        self.tuning, self.verdict = tuning, verdict
        self.suggestions = suggestions or {}
        self.records = records or {}

    @classmethod
    def read(cls, files: dict, records=(), suggestions=()) -> Tables:
        """`files`: {name: csv file} of TABLE_NAMES; `records`: run.json files (a run's first
        seed's is its record); `suggestions`: the range tests' combined suggestion.json files."""
        frames = [pd.read_csv(files[name]) for name in TABLE_NAMES]
        return cls(
            *frames, suggestions=suggestions_by_run(suggestions), records=first_records(records)
        )

    def record(self, run: str) -> dict | None:
        """run.json of the run's first seed that has one (None where none was given)."""
        return self.records.get(run)

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
    """The mean of `y` over seeds at each `x` (NaN-aware), its t-interval at lrstudy.layout's
    CONFIDENCE (`low`, `high`; NaN where fewer than two seeds count) and the seeds counted (`n`):
    the band every figure shades and every caption describes (layout.BAND_TEXT)."""
    grouped = frame.groupby(x)[y]
    mean, sd, n = grouped.mean(), grouped.std(), grouped.count()
    quantile = scipy_stats.t.ppf(BAND_QUANTILE, (n - 1).where(n > 1))
    half = pd.Series(quantile, index=n.index) * sd / np.sqrt(n)
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
    """The mean line and, where several seeds count, the band (band(): the t-interval)."""
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


def stop_handle(label: str) -> Line2D:
    """The legend entry of the x that marks where a diverged run stopped (draw_stops; an arrow ^
    on the top edge where its loss lies above the axis)."""
    return Line2D([], [], color="0.2", marker="x", markeredgewidth=2, linestyle="none", label=label)


def save(fig, path: Path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)
