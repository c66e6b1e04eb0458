"""The report's figures (PNG, matplotlib Agg), all of them in one call.

    python -m lrstudy.plots --steps results/tables/steps.csv --evals ... --verdict ... \
        --records results/runs/*/seed*/run.json --suggestions results/runs/RANGE/suggestion.json \
        --config-json '<config as JSON>' --out results/figures

Per source section (config `report.sections`; its runs in the section's order) a learning-rate
figure, a train & valid loss figure and, where the source has one, a legend-only image; then the
three best families at their tuned setting on their confirmation seeds (results/tables/best.csv,
the verdict's first rows): LR, loss and test loss, each labelled with its verdict word. File
names are the source's (lrstudy.layout.SECTION_FIGURES). Several seeds: the mean line and a
shaded band, the t-interval lrstudy.layout.BAND_TEXT describes (plot_base.band). A diverged run's
curves stop where it stopped, marked with an x, and its label says "(diverged)"; a run that never
learned says "(collapsed)". Where a shown run's momentum changes (OneCycleLR, CyclicLR), its LR
figure has a momentum panel below.

The figure families live beside this module: plot_base (tables, band, shared drawing, save),
plot_lr (LR and legend images), plot_loss (loss figures), plot_range (the range test's loss
figure), verdict_plots (tuning curves, paired differences).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lrstudy import losses, plot_base, verdict_plots
from lrstudy.layout import SECTION_FIGURES, extra_figures, section_title
from lrstudy.plot_base import AXIS, STYLE, TABLE_NAMES, Tables, label, plt, run_colors
from lrstudy.plot_loss import draw_loss, draw_split_loss
from lrstudy.plot_lr import draw_legend, draw_lr
from lrstudy.plot_range import draw_range_loss


def best_runs(tables: Tables) -> list[str]:
    best = tables.best.sort_values("rank") if "rank" in tables.best else tables.best
    return [str(r) for r in best["run"]]


def section_runs(config: dict, tables: Tables, section: str) -> tuple[list[str], str, dict]:
    """A section's runs, its figures' title and each run's legend label."""
    if section == "best":
        runs = best_runs(tables)
        title = f"best {len(runs)} tuned families, confirmation seeds"
        return runs, title, {r: label(r, tables, name=tables.best_label(r)) for r in runs}
    runs = list(config["report"]["sections"][section])
    records = {r: tables.record(r) for r in runs}
    title = section_title(section, runs, config, records)
    return runs, title, {r: label(r, tables) for r in runs}


# What each kind of figure draws (lrstudy.layout.SECTION_FIGURES gives every figure's kind):
# kind -> draw(runs, tables, colors, title, path, labels, section).
DRAW = {
    "learning rate": lambda runs, tables, colors, title, path, labels, section: draw_lr(
        runs, tables, colors, f"{title}: learning rate", path, labels
    ),
    "loss": lambda runs, tables, colors, title, path, labels, section: (
        draw_range_loss if section == "range_test" else draw_loss
    )(runs, tables, colors, f"{title}: train & valid loss", path, labels),
    "legend": lambda runs, tables, colors, title, path, labels, section: draw_legend(
        runs, tables, colors, path, labels
    ),
    "test loss": lambda runs, tables, colors, title, path, labels, section: draw_split_loss(
        runs, tables, colors, f"{title}: test loss", path, labels
    ),
}


def draw_section(config: dict, tables: Tables, colors: dict, section: str, out: Path) -> list:
    """Every figure of a section (its LR and loss figures, the range test's own loss figure, its
    legend image, the best families' test loss); returns the paths written."""
    runs, title, labels = section_runs(config, tables, section)
    paths = []
    for name, kind in SECTION_FIGURES[section].items():
        paths.append(out / f"{name}.png")
        DRAW[kind](runs, tables, colors, title, paths[-1], labels, section)
    return paths


def draw_extra(config: dict, tables: Tables, colors: dict, out: Path) -> list:
    """The LR and loss figure of each `report.extra_sections` section (the HTML report only)."""
    written = []
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


def draw_all(config: dict, tables: Tables, out: Path) -> list[Path]:
    """Every figure of the report into `out`; returns their paths."""
    plt.rcParams.update(STYLE)
    AXIS["loss"] = losses.label(config.get("loss"))
    out = Path(out)
    colors = run_colors(config, best_runs(tables))
    written = []
    for section in SECTION_FIGURES:
        written += draw_section(config, tables, colors, section, out)
    written += verdict_plots.draw(tables.tuning, tables.verdict, out, plot_base.save)
    return written + draw_extra(config, tables, colors, out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Draw every figure of the report.")
    for name in TABLE_NAMES:
        parser.add_argument(f"--{name}", type=Path, required=True, help=f"{name}.csv")
    parser.add_argument(
        "--records", type=Path, nargs="*", default=[], help="run.json of the sections' runs"
    )
    parser.add_argument(
        "--suggestions",
        type=Path,
        nargs="*",
        default=[],
        help="the range tests' combined suggestion.json",
    )
    parser.add_argument(
        "--config-json",
        required=True,
        help="the workflow config (at least `runs` and `report`) as JSON",
    )
    parser.add_argument("--out", type=Path, required=True, help="figures folder")
    args = parser.parse_args(argv)
    config = json.loads(args.config_json)
    files = {name: getattr(args, name) for name in TABLE_NAMES}
    tables = Tables.read(files, args.records, args.suggestions)
    for path in draw_all(config, tables, args.out):
        print(path)


if __name__ == "__main__":
    main()
