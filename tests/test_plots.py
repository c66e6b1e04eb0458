"""Tests of lrstudy.plots on small synthetic tables (no training): every figure is drawn, is a PNG
of the planned size, and a diverged run and a 3-seed band draw without error.

`synthetic_study` and `png_size` are also used by tests/test_report.py."""

from __future__ import annotations

import copy
import io
import json
import math
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrstudy import families, layout, plot_base, plot_loss, plot_lr, plot_range, plots
from lrstudy.layout import (
    FIGURES,
    RECORD_GLOB,
    SECTION_FIGURES,
    VERDICT_FIGURES,
    figure_kinds,
    format_value,
)

from .util import ROOT, default_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG file."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path} has no IHDR chunk first"
    return struct.unpack(">II", head[16:24])


def _lr(spec: dict, step: int, total: int) -> float:
    """A plausible LR curve per scheduler class (the shapes, not torch's exact values)."""
    if "range_test" in spec:
        t = spec["range_test"]
        return t["start_lr"] * (t["end_lr"] / t["start_lr"]) ** (step / (total - 1))
    kw = {k: (0.5 if v == "auto" else v) for k, v in (spec.get("kwargs") or {}).items()}
    name = spec["scheduler"]
    if name == "StepLR":
        return 0.1 * kw.get("gamma", 0.1) ** (step // kw["step_size"])
    if name == "ExponentialLR":
        return 0.1 * kw["gamma"] ** step
    if name == "OneCycleLR":
        peak = 0.3 * total
        top = kw["max_lr"]
        if step < peak:
            return top / 25 + (top - top / 25) * step / peak
        return top * (1 - (step - peak) / (total - peak)) + 1e-6
    if name == "CyclicLR":
        rise = kw.get("step_size_up", 2000)
        fall = kw.get("step_size_down") or rise
        phase = step % (rise + fall)
        up = phase / rise if phase < rise else 1 - (phase - rise) / fall
        return kw["base_lr"] + (kw["max_lr"] - kw["base_lr"]) * up
    return 0.1


def synthetic_study(
    folder: Path,
    config: dict | None = None,
    seeds=(0,),
    diverged: dict | None = None,
    total: int = 60,
    eval_every: int = 10,
) -> dict:
    """Write results/tables/*.csv, results/runs/RUN/seedS/run.json and the range tests'
    suggestion.json under `folder` for `config` (default: config/config.yaml).

    `diverged` maps a run to the step where it blows up (all seeds): its loss becomes inf there and
    its tables stop. Returns the config (with `seeds` set)."""
    config = copy.deepcopy(config or default_config())
    config["seeds"] = list(seeds)
    families.add_range_tests(config)  # as lrstudy.config's check does (range_test-families)
    diverged = diverged or {}
    folder = Path(folder)
    tables, runs_dir = folder / "tables", folder / "runs"
    tables.mkdir(parents=True, exist_ok=True)
    steps, evals, summary = [], [], []
    rng = np.random.default_rng(0)
    plan = [(run, spec, list(seeds)) for run, spec in config["runs"].items()]
    tuning = config["tuning"]
    for run, spec in families.family_runs(config).items():
        confirming = spec["tuning"]["multiplier"] == families.SELECTED
        plan.append((run, spec, tuning["confirm_seeds" if confirming else "seeds"]))
    for r, (run, spec, run_seeds) in enumerate(plan):
        for seed in run_seeds:
            stop = diverged.get(run)
            n = stop + 1 if stop is not None else total
            smoothed, avg = None, 0.0
            rate = 0.02 + 0.01 * r + 0.002 * seed
            for step in range(n):
                lr = _lr(spec, step, total)
                loss = 2.3 * math.exp(-rate * step) + 0.05 + 0.05 * rng.random()
                if stop is not None and step >= stop - 3:
                    loss = 10.0 ** (step - stop + 4) if step < stop else math.inf
                avg = 0.9 * avg + 0.1 * loss
                smoothed = avg / (1 - 0.9 ** (step + 1))
                steps.append(
                    {
                        "run": run,
                        "seed": seed,
                        "step": step,
                        "epoch": step // 20,
                        "lr": lr,
                        "momentum": 0.0,
                        "train_loss": loss,
                        "smoothed_loss": smoothed,
                    }
                )
            done = n
            eval_steps = sorted({*range(0, done + 1, eval_every), done})
            for split, shift in (("valid", 0.05), ("test", 0.08)):
                for step in eval_steps:
                    loss = 2.3 * math.exp(-rate * step) + shift
                    if stop is not None and step >= stop:
                        loss = math.nan
                    evals.append(
                        {
                            "run": run,
                            "seed": seed,
                            "step": step,
                            "epoch": step // 20,
                            "split": split,
                            "loss": loss,
                            "accuracy": 1 - loss / 2.4 if loss == loss else math.nan,
                        }
                    )
            valid = [
                e for e in evals if e["run"] == run and e["seed"] == seed and e["split"] == "valid"
            ]
            test = [
                e for e in evals if e["run"] == run and e["seed"] == seed and e["split"] == "test"
            ]
            summary.append(
                {
                    "run": run,
                    "seed": seed,
                    "kind": "range_test" if "range_test" in spec else "scheduled",
                    "scheduler": spec.get("scheduler", "range_test"),
                    "optimizer": "SGD",
                    "status": "diverged" if stop is not None else "completed",
                    "steps": n,
                    "final_train_loss": smoothed,
                    "final_valid_loss": valid[-1]["loss"],
                    "best_valid_loss": np.nanmin([e["loss"] for e in valid]),
                    "final_valid_accuracy": valid[-1]["accuracy"],
                    "best_valid_accuracy": 0.9,
                    "test_loss": test[-1]["loss"],
                    "test_accuracy": test[-1]["accuracy"],
                    "steps_to_target": None,
                    "chance_test_loss": math.log(10),
                    "chance_test_accuracy": 0.1,
                    "wall_seconds": 1.0,
                }
            )
            record = {
                "run": run,
                "seed": seed,
                "status": summary[-1]["status"],
                "steps": n,
                "bounds": None,
                "optimizer": {"name": "SGD", "kwargs": {"lr": 0.1}},
            }
            if "range_test" in spec:
                record["scheduler"] = {"class": "LambdaLR", "range_test": spec["range_test"]}
            else:
                kwargs = {
                    k: (0.5 if v == "auto" else v) for k, v in (spec.get("kwargs") or {}).items()
                }
                if "auto" in (spec.get("kwargs") or {}).values():
                    record["bounds"] = {"base_lr": 0.125, "max_lr": 0.5, "lr": 0.5}
                if spec["scheduler"] == "OneCycleLR":
                    kwargs.update(steps_per_epoch=20, epochs=total // 20)
                record["scheduler"] = {
                    "class": spec["scheduler"],
                    "kwargs": kwargs,
                    "config_kwargs": spec.get("kwargs") or {},
                }
            (runs_dir / run / f"seed{seed}").mkdir(parents=True, exist_ok=True)
            (runs_dir / run / f"seed{seed}" / "run.json").write_text(json.dumps(record))
        if "range_test" in spec:
            sugg = {"minimum": 1e-3, "steep": 4e-3, "valley": 5e-3, "slide": None}
            (runs_dir / run / "suggestion.json").write_text(
                json.dumps(
                    {
                        "run": run,
                        "suggestions": sugg,
                        "bounds": {"base_lr": 1.25e-3, "max_lr": 5e-3, "lr": 5e-3},
                    }
                )
            )
    summary = pd.DataFrame(summary)
    steps = pd.DataFrame(steps)
    steps.to_csv(tables / "steps.csv", index=False)
    pd.DataFrame(evals).to_csv(tables / "evals.csv", index=False)
    summary.to_csv(tables / "summary.csv", index=False)
    write_verdict_tables(config, folder, steps, summary)
    return config


def write_verdict_tables(config: dict, folder: Path, steps, summary) -> None:
    """tuning.csv, verdict.csv and best.csv from the synthetic runs, as the select_setting and
    aggregate rules make them (their selections under folder/tuning/)."""
    from lrstudy import aggregate, tuning

    metric = config["report"]["best_metric"]
    paths = []
    for family in config["families"]:
        grid = {m: families.tuning_run(family, m) for m in config["tuning"]["multipliers"]}
        chosen = tuning.select(tuning.tuning_rows(summary, family, grid, metric), metric)
        paths.append(Path(folder) / "tuning" / f"{family}.json")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        paths[-1].write_text(json.dumps(chosen))
    differences = {family: families.differences(config, family) for family in config["families"]}
    settings = {
        **config["verdict"],
        "looks": families.look_seeds(config),
        "differences": differences,
    }  # what the aggregate rule passes (workflow/rules/common.smk: verdict_settings_json)
    tuning, table, best = aggregate.verdict_tables(
        steps, summary, paths, settings, 1000, config["report"]["best_count"]
    )
    for name, frame in (("tuning", tuning), ("verdict", table), ("best", best)):
        frame.to_csv(Path(folder) / "tables" / f"{name}.csv", index=False)


def study_files(folder: Path) -> dict:
    """A synthetic study's files as the rules pass them: its tables ({name: csv}), every run.json
    (`records`) and the range tests' combined suggestion.json (`suggestions`)."""
    folder = Path(folder)
    return {
        "files": {name: folder / "tables" / f"{name}.csv" for name in plot_base.TABLE_NAMES},
        "records": sorted((folder / "runs").glob(RECORD_GLOB)),
        "suggestions": sorted((folder / "runs").glob("*/suggestion.json")),
    }


def read_tables(folder: Path) -> plot_base.Tables:
    """plot_base.Tables of a synthetic study written to `folder` (synthetic_study)."""
    return plot_base.Tables.read(**study_files(folder))


def draw(tmp_path: Path, **kwargs) -> tuple[dict, Path]:
    config = synthetic_study(tmp_path / "results", **kwargs)
    tables = read_tables(tmp_path / "results")
    out = tmp_path / "figures"
    plots.draw_all(config, tables, out)
    return config, out


def expected_width(name: str) -> int:
    """Twice the width the report shows the image at."""
    if name.endswith("_legend"):
        return 300
    loss = {n for _, n, kind in figure_kinds() if kind in ("loss", "test loss")}
    return 1100 if name in loss | set(VERDICT_FIGURES) else 800


def check_figures(out: Path) -> None:
    for name in [*FIGURES, *VERDICT_FIGURES]:
        path = out / f"{name}.png"
        assert path.is_file(), f"{name}.png was not drawn"
        width, height = png_size(path)
        assert width == expected_width(name), f"{name}.png is {width} px wide"
        assert 60 <= height <= 1400, f"{name}.png is {height} px high"
        assert path.stat().st_size > 1000, f"{name}.png is nearly empty"
    assert sorted(p.stem for p in out.glob("*.png")) == sorted([*FIGURES, *VERDICT_FIGURES])


# ------------------------------------------------------------------------------ what was drawn
def capture(monkeypatch) -> dict:
    """name -> what each figure drew, read from its matplotlib artists as plot_base.save gets it:
    per axes the legend entries (text, colour) and the data lines (colour, number of points)."""
    from matplotlib.colors import to_hex

    figures = {}
    original = plot_base.save

    def save(fig, path):
        axes = []
        for ax in fig.axes:
            legend = ax.get_legend()
            entries = []
            if legend is not None:
                for text, handle in zip(legend.get_texts(), legend.legend_handles):
                    color = handle.get_color() if hasattr(handle, "get_color") else None
                    entries.append(
                        (
                            text.get_text(),
                            to_hex(color) if isinstance(color, (str, tuple)) else None,
                        )
                    )
            lines = [
                (to_hex(line.get_color()), len(line.get_xdata()))
                for line in ax.get_lines()
                if len(line.get_xdata()) > 1
            ]
            axes.append({"legend": entries, "lines": lines})
        figures[Path(path).stem] = axes
        return original(fig, path)

    monkeypatch.setattr(plot_base, "save", save)
    return figures


def check_drawn(figures: dict, config: dict, folder: Path) -> None:
    """Each section's LR, loss (and test loss) figure names exactly the section's runs, in order
    (the best three: best.csv's), each with a line of its legend colour as long as that run's
    data."""
    tables = {
        name: pd.read_csv(folder / "tables" / f"{name}.csv")
        for name in ("steps", "evals", "summary", "best")
    }
    diverged = set(tables["summary"].loc[tables["summary"]["status"] == "diverged", "run"])
    for section, names_and_kinds in SECTION_FIGURES.items():
        lr_name, loss_name = list(names_and_kinds)[:2]
        if section == "best":
            best = tables["best"].sort_values("rank")
            runs = list(best["run"])
            # rank, family, the chosen multiplier and the verdict word
            names = [
                f"#{row.rank} {row.family} x{format_value(row.multiplier)}: {row.verdict}"
                for row in best.itertuples()
            ]
            assert list(best["rank"]) == list(range(1, len(best) + 1))
            kinds = [(lr_name, "lr"), (loss_name, "loss"), ("compare3bestTestLoss", "test")]
        else:
            runs = names = list(config["report"]["sections"][section])
            kinds = [(lr_name, "lr"), (loss_name, "loss")]
        for figure, kind in kinds:
            axes = figures[figure][
                0
            ]  # the range test's loss figure: its top axes is the loss against the step
            legend = [
                (text, color)
                for text, color in axes["legend"]
                if any(text.startswith(n) for n in names)
            ]
            assert [text.split(",")[0] for text, _ in legend] == [
                f"{n} (diverged)" if run in diverged else n for n, run in zip(names, runs)
            ], (figure, legend)
            for run, (_, color) in zip(runs, legend):
                steps = tables["steps"].loc[tables["steps"]["run"] == run, "step"].nunique()
                evals = {
                    split: tables["evals"][
                        (tables["evals"]["run"] == run) & (tables["evals"]["split"] == split)
                    ]["step"].nunique()
                    for split in ("valid", "test")
                }
                # lr: the LR per step; loss: the train loss per step, smoothed and raw, and the
                # valid loss per evaluation; test: the test loss per evaluation
                want = {
                    "lr": [steps],
                    "loss": [steps, steps, evals["valid"]],
                    "test": [evals["test"]],
                }[kind]
                drawn = sorted(n for c, n in axes["lines"] if c == color)
                for n in set(want):
                    assert drawn.count(n) >= want.count(n), (
                        f"{figure}: {run} (colour {color}) drew lines of {drawn} points, not {want}"
                    )


def test_figure_names_are_the_source_images():
    assert len(FIGURES) == 21 and len(set(FIGURES)) == 21
    assert {
        "ExponentiallyIncLR",
        "StepDecLoss",
        "OneCycleLR_DiffMax",
        "compare3bestTestLoss",
        "2_legend",
        "7_legend",
    } <= set(FIGURES)


def test_three_seed_band_and_diverged_run(tmp_path, monkeypatch):
    figures = capture(monkeypatch)
    config, out = draw(tmp_path, seeds=(0, 1, 2), diverged={"cyclic": 35, "onecycle_1.1": 20})
    check_figures(out)
    check_drawn(figures, config, tmp_path / "results")
    tables = read_tables(tmp_path / "results")
    assert plot_base.label("cyclic", tables) == "cyclic (diverged)"
    assert plot_base.label("step", tables) == "step"
    frame = tables.run_steps("step")
    stats = plot_base.band(frame, "step", "train_loss").set_index("step")
    assert (
        (stats["n"] == 3).all()
        and (stats["low"] <= stats["mean"]).all()
        and (stats["mean"] <= stats["high"]).all()
    )
    # the 95 % t-interval, by scipy's own t.interval over the three seeds at each step
    from scipy import stats as st

    for step, values in frame.groupby("step")["train_loss"]:
        low, high = st.t.interval(0.95, 2, loc=values.mean(), scale=st.sem(values))
        assert stats.loc[step, ["low", "high"]].tolist() == pytest.approx(
            [low, high], rel=1e-9, abs=1e-12
        )


def test_diverged_run_curve_stops_with_a_mark(tmp_path):
    import matplotlib.pyplot as plt

    synthetic_study(tmp_path, diverged={"cyclic": 30})
    tables = read_tables(tmp_path)
    fig, ax = plt.subplots()
    plot_loss.draw_train_valid(
        ax, ["cyclic"], tables, {"cyclic": "C0"}, {"cyclic": "cyclic (diverged)"}
    )
    # its loss at the stop (10^4) lies above the clipped axis: an arrow on the top edge
    marks = [line for line in ax.get_lines() if line.get_marker() in ("x", "^")]
    assert marks, "no mark where the diverged run stopped"
    assert all(
        line.get_ydata()[0] == ax.get_ylim()[1] for line in marks if line.get_marker() == "^"
    )
    smoothed = [
        line
        for line in ax.get_lines()
        if line.get_marker() in ("None", None, "") and line.get_alpha() is None
    ]
    assert max(max(line.get_xdata()) for line in smoothed) <= 30
    plt.close(fig)


def test_partly_diverged_label(tmp_path):
    synthetic_study(tmp_path, seeds=(0, 1))
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv")
    summary.loc[(summary["run"] == "step") & (summary["seed"] == 1), "status"] = "diverged"
    tables = plot_base.Tables(
        pd.read_csv(tmp_path / "tables" / "steps.csv"),
        pd.read_csv(tmp_path / "tables" / "evals.csv"),
        summary,
        pd.read_csv(tmp_path / "tables" / "best.csv"),
    )
    assert plot_base.label("step", tables) == "step (diverged 1/2)"


def test_log_axis_only_where_the_values_span_decades():
    assert plot_base.spans_decades([1e-5, 10])
    assert not plot_base.spans_decades([0.01, 1], plot_base.LR_LOG_RATIO)
    assert not plot_base.spans_decades([0.5, 2.3])
    assert not plot_base.spans_decades([math.nan, 1.0])


def test_runs_come_from_the_config_sections(tmp_path, monkeypatch):
    config = default_config()
    config["report"]["sections"]["step"] = ["exp_0.99"]
    figures = capture(monkeypatch)
    config, out = draw(tmp_path, config=config, diverged={"exp_0.995": 30})
    check_figures(out)
    check_drawn(figures, config, tmp_path / "results")
    assert [text for text, _ in figures["StepDecLR"][0]["legend"]] == ["exp_0.99"]
    assert plots.section_title("step", ["exp_0.99"], config) == "ExponentialLR"
    assert (
        plots.section_title("exponential", ["exp_0.999", "exp_0.995"], config)
        == "ExponentialLR: different gamma"
    )


def test_no_best_runs_still_draws(tmp_path):
    config = synthetic_study(tmp_path / "results")
    (tmp_path / "results" / "tables" / "best.csv").write_text(
        "rank,run,metric,mean,std,min,max,seeds\n"
    )
    tables = read_tables(tmp_path / "results")
    plots.draw_all(config, tables, tmp_path / "figures")
    check_figures(tmp_path / "figures")


def test_cli_draws_every_figure(tmp_path):
    config = synthetic_study(tmp_path / "results")
    inputs = study_files(tmp_path / "results")
    tables = [arg for name, path in inputs["files"].items() for arg in (f"--{name}", str(path))]
    plots.main(
        [
            *tables,
            "--records",
            *map(str, inputs["records"]),
            "--suggestions",
            *map(str, inputs["suggestions"]),
            "--config-json",
            json.dumps(config),
            "--out",
            str(tmp_path / "figures"),
        ]
    )
    check_figures(tmp_path / "figures")


def test_range_test_figure_has_loss_against_lr(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    config = synthetic_study(tmp_path / "results")
    tables = read_tables(tmp_path / "results")
    captured = []
    original = plot_base.save
    monkeypatch.setattr(
        plot_base, "save", lambda fig, path: (captured.append(fig), original(fig, path))
    )
    plot_range.draw_range_loss(
        ["range_test"],
        tables,
        plot_base.run_colors(config),
        "t",
        tmp_path / "x.png",
        {"range_test": "range_test"},
    )
    bottom = captured[0].axes[1]
    assert bottom.get_xscale() == "log"
    vertical = [
        line
        for line in bottom.get_lines()
        if len(line.get_xdata()) == 2 and len(set(line.get_xdata())) == 1
    ]
    assert sorted(float(line.get_xdata()[0]) for line in vertical) == [
        1e-3,
        4e-3,
        5e-3,
    ]  # slide is None
    assert any("valley" in text.get_text() for text in bottom.get_legend().get_texts())
    plt.close("all")


def test_a_diverging_range_test_shows_its_dip(tmp_path, monkeypatch):
    """Seeds of a range test that blow up at step 45 of 60: its curves end before the stop, the
    loss axis ends a little above the first losses (not at the blow-up's 10^4), and each seed's
    stop is marked on the top edge with an arrow (its loss lies above the axis)."""
    from matplotlib.colors import to_hex

    kept = {}
    original = plot_base.save

    def save(fig, path):
        if Path(path).stem == "ExponentiallyIncLoss":
            top = fig.axes[0]
            kept["ylim"] = top.get_ylim()
            kept["lines"] = [
                (to_hex(line.get_color()), line.get_marker(), list(line.get_xdata()))
                for line in top.lines
            ]
        return original(fig, path)

    monkeypatch.setattr(plot_base, "save", save)
    draw(tmp_path, seeds=(0, 1, 2), diverged={"range_test": 45})
    steps = pd.read_csv(tmp_path / "results" / "tables" / "steps.csv")
    first = steps[(steps["run"] == "range_test") & (steps["step"] < 3)]["smoothed_loss"].max()
    assert kept["ylim"][1] < 2 * first, (kept["ylim"], first)
    arrows = [line for line in kept["lines"] if line[1] == "^"]
    assert len(arrows) == 3 and [line[2] for line in arrows] == [[44]] * 3, kept["lines"]
    color = arrows[0][0]
    curves = [xs for c, marker, xs in kept["lines"] if c == color and marker in ("None", "")]
    assert curves and max(max(xs) for xs in curves) < 45, "a curve of the run runs to its stop"


# ------------------------------------------------------------------ the band and its captions
def render_caption(name: str, params: dict) -> str:
    """workflow/report/NAME.rst as `snakemake --report` renders it (Jinja2, `snakemake.config` and
    the params of the rule that made the figure)."""
    import jinja2

    class Snakemake:
        config = default_config()
        wildcards = {}

    Snakemake.params = params
    path = ROOT / "workflow" / "report" / f"{name}.rst"
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.from_string(path.read_text()).render(snakemake=Snakemake)


def test_the_band_is_the_interval_the_captions_name(tmp_path, monkeypatch):
    """Three seeds' LRs, known at each step: the band the LR figure shades (its polygon's
    vertices) is mean -+ t(q, n-1) sd / sqrt(n) at the level and quantile the rendered caption
    names, worked here from the seeds' values."""
    from scipy import stats

    caption = render_caption("StepDecLR", layout.CAPTION_PARAMS)
    named = re.search(r"(\d+(?:\.\d+)?) % t-interval \(mean ± t\(([0-9.]+), n−1\)·sd/√n\)", caption)
    assert named, caption
    level, quantile = float(named[1]) / 100, float(named[2])
    assert quantile == pytest.approx((1 + level) / 2)  # a two-sided interval at that level
    seeds = {0: [0.10, 0.20, 0.30, 0.40], 1: [0.12, 0.26, 0.31, 0.40], 2: [0.17, 0.21, 0.39, 0.46]}
    steps = pd.DataFrame(
        [
            {"run": "a", "seed": seed, "step": step, "lr": lr, "momentum": 0.0}
            for seed, values in seeds.items()
            for step, lr in enumerate(values)
        ]
    )
    summary = pd.DataFrame([{"run": "a", "seed": s, "status": "completed"} for s in seeds])
    tables = plot_base.Tables(steps, steps.iloc[:0], summary, summary.iloc[:0])
    shaded = []
    original = plot_base.save

    def save(fig, path):
        shaded.extend(c.get_paths()[0].vertices for c in fig.axes[0].collections)
        return original(fig, path)

    monkeypatch.setattr(plot_base, "save", save)
    plot_lr.draw_lr(["a"], tables, {"a": "C0"}, "t", tmp_path / "a.png", {"a": "a"})
    assert len(shaded) == 1, "one band for the one run of three seeds"
    vertices = shaded[0]
    t = stats.t.ppf(quantile, len(seeds) - 1)
    for step in range(4):
        values = [seeds[s][step] for s in seeds]
        mean = sum(values) / 3
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
        ys = vertices[vertices[:, 0] == step][:, 1]
        assert [ys.min(), ys.max()] == pytest.approx(
            [mean - t * sd / math.sqrt(3), mean + t * sd / math.sqrt(3)], rel=1e-12
        ), step


def best_tables() -> plot_base.Tables:
    """Two families' confirmation runs on three seeds and a best.csv that ranks them by hand:
    alpha #1, the reference; beta, tuned at x0.5, `equivalent`."""
    runs = [families.confirmation_run(family) for family in ("alpha", "beta")]
    seeds, step = (10, 11, 12), {"epoch": 0, "train_loss": 1.0, "smoothed_loss": 1.0}
    steps = pd.DataFrame(
        [
            {"run": run, "seed": seed, "step": i, "lr": 0.1 * (i + 1), "momentum": 0.9, **step}
            for run in runs
            for seed in seeds
            for i in range(3)
        ]
    )
    evals = pd.DataFrame(
        [
            {"run": run, "seed": seed, "step": 2, "epoch": 0, "split": split}
            | {"loss": 1.0, "accuracy": 0.9}
            for run in runs
            for seed in seeds
            for split in ("valid", "test")
        ]
    )
    summary = pd.DataFrame(
        [{"run": r, "seed": s, "status": "completed"} for r in runs for s in seeds]
    )
    best = pd.DataFrame(
        {
            "rank": [1, 2],
            "family": ["alpha", "beta"],
            "run": runs,
            "multiplier": [1.0, 0.5],
            "verdict": ["reference", "equivalent"],
            "could_be_best": [True, True],
        }
    )
    return plot_base.Tables(steps, evals, summary, best)


def test_best_legends_name_rank_family_multiplier_and_verdict(tmp_path, monkeypatch):
    """The best families' figures label each run `#rank family xmultiplier: verdict` (best.csv's
    rank, family, chosen multiplier and word)."""
    figures = capture(monkeypatch)
    tables = best_tables()
    config = {"runs": {}, "report": {"sections": {}}}
    colors = plot_base.run_colors(config, plots.best_runs(tables))
    plots.draw_section(config, tables, colors, "best", tmp_path / "figures")
    expected = ["#1 alpha x1: reference", "#2 beta x0.5: equivalent"]
    for name in ("compare3bestLR", "compare3bestLoss"):
        legend = [text for axes in figures[name] for text, _ in axes["legend"]]
        assert legend[:2] == expected, (name, legend)
    test_legend = [text for text, _ in figures["compare3bestTestLoss"][0]["legend"]]
    assert [text.split(",")[0] for text in test_legend] == expected


def test_a_figure_added_to_a_section_is_drawn_with_its_kinds_caption(tmp_path, monkeypatch):
    """One entry in lrstudy.layout.SECTION_FIGURES adds a figure: drawn with that section's runs
    (their test loss here, a line per run), captioned by its kind's caption."""
    figures = {**SECTION_FIGURES["onecycle"], "OneCycleTestLoss": "test loss"}
    monkeypatch.setitem(SECTION_FIGURES, "onecycle", figures)
    config = synthetic_study(tmp_path / "results")
    written = plots.draw_all(config, read_tables(tmp_path / "results"), tmp_path / "figures")
    assert tmp_path / "figures" / "OneCycleTestLoss.png" in written
    assert png_size(tmp_path / "figures" / "OneCycleTestLoss.png")[0] == 1100  # 5.5 in, 200 dpi
    assert layout.caption_for("OneCycleTestLoss", "test loss") == "../report/kind_test_loss.rst"
    assert layout.caption_for("OneCycleLoss", "loss") == "../report/OneCycleLoss.rst"


def test_every_figure_kind_is_drawn_and_every_figure_has_a_caption():
    assert {kind for _, _, kind in figure_kinds()} <= set(plots.DRAW)
    for _, name, kind in figure_kinds():
        assert (ROOT / "workflow" / "rules" / layout.caption_for(name, kind)).resolve().is_file()
    for kind in plots.DRAW:
        assert (ROOT / "workflow" / "report" / f"kind_{kind.replace(' ', '_')}.rst").is_file()


# --------------------------------------------------------------------------- the forest plot
STUDY_LINE = (
    "Could be best (Hsu's MCB at alpha 0.05, final_test_loss on the test split): step, onecycle."
    " No family tested better than tuning's pick, step."
)


def hand_verdict() -> pd.DataFrame:
    """A verdict table (lrstudy.verdict.VERDICT_FIELDS) written by hand, as read back from its
    CSV: the reference; a family `equivalent` that cycles its momentum; one `worse` with two
    failed seeds, decided at look 2; one `undecided` at look 3 whose difference interval is
    unbounded both ways and equivalence interval below (another optimizer); one never looked at."""
    from lrstudy.verdict import VERDICT_FIELDS

    inf, nan = math.inf, math.nan
    shared = {"metric": "final_test_loss", "margin": 0.02, "trials": 5, "momentum": "0.9"}
    intervals = ("hl", "diff_ci_low", "diff_ci_high", "diff_level")
    intervals += ("equivalence_low", "equivalence_high", "equivalence_level")
    rows = [
        ("step", 1, "reference", True, "", 1, 10, 0, (nan,) * 7, STUDY_LINE),
        ("onecycle", 2, "equivalent", True, "momentum cycled 0.85-0.95", 1, 10, 0,
         (0.004, -0.03, 0.035, 0.9854, -0.012, 0.015, 0.9708), ""),
        ("constant", 3, "worse", False, "", 2, 20, 2, (0.06, 0.03, 0.09, 0.99, 0.035, 0.085,
         0.98), "2 failed seed(s) counted at the failure value"),
        ("schedulefree", 4, "undecided", False, "optimizer SGDScheduleFree; momentum 0", 3, 30,
         0, (0.01, -inf, inf, 0.9854, -inf, 0.05, 0.97), ""),
        ("cyclic", 5, "undecided", False, "", 0, 0, 0, (nan,) * 7, ""),
    ]  # fmt: skip
    keys = ("family", "rank", "verdict", "could_be_best", "also_changes", "look", "n_seeds")
    frame = pd.DataFrame(
        [
            {**shared, **dict(zip(keys, row)), "n_failed": row[7], "note": row[9]}
            | dict(zip(intervals, row[8]), multiplier=0.5)
            for row in rows
        ]
    ).reindex(columns=VERDICT_FIELDS)
    frame["equivalence_bound"] = frame[["equivalence_low", "equivalence_high"]].abs().max(axis=1)
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))  # as the CSV reads back


def drawn_forest(frame: pd.DataFrame, tmp_path: Path) -> dict:
    """What draw_forest drew of `frame`: its axes (main, right labels), legend texts, PNG path."""
    from lrstudy import verdict_plots

    drawn = {}

    def save(fig, path):
        main, right = fig.axes
        drawn.update(
            main=main,
            left=[t.get_text() for t in main.get_yticklabels()],
            right=[(t.get_text(), t.get_color()) for t in right.get_yticklabels()],
            legend=[t.get_text() for t in fig.legends[0].get_texts()],
            path=path,
        )
        plot_base.save(fig, path)

    verdict_plots.draw_forest(frame, tmp_path / "forest.png", save)
    return drawn


def test_forest_draws_the_decisions_intervals_band_and_labels(tmp_path):
    """verdict_forest.png on a table written by hand: per family its HL estimate, the difference
    test's interval (thick, above the row) and the equivalence test's (thin, below), an infinite
    end as an arrow at the axis edge; the +-margin band; the reference's diamond on the zero line
    it owns; left the rank, family, multiplier and also_changes, right (in the word's colour) the
    word, could-be-best, look, seeds, failed seeds and the levels of both intervals."""
    from matplotlib.colors import to_hex

    from lrstudy.verdict_plots import DIFFERENCE_STYLE, EQUIVALENCE_STYLE, OFFSET, WORD_COLORS

    frame = hand_verdict()
    drawn = drawn_forest(frame, tmp_path)
    ax, (x_low, x_high) = drawn["main"], drawn["main"].get_xlim()
    lines = [(line, line.get_xdata(), line.get_ydata()) for line in ax.get_lines()]
    for y, row in zip(range(len(frame) - 1, -1, -1), frame.itertuples()):
        at = [(line, xs) for line, xs, ys in lines if list(ys) in ([y], [y, y])]
        if row.verdict == "reference":
            assert [(ln.get_marker(), list(xs)) for ln, xs in at] == [("D", [0])], row.family
            continue
        for style, dy, low, high in (
            (DIFFERENCE_STYLE, OFFSET, row.diff_ci_low, row.diff_ci_high),
            (EQUIVALENCE_STYLE, -OFFSET, row.equivalence_low, row.equivalence_high),
        ):
            ends = [(ln, xs) for ln, xs, ys in lines if len(xs) == 2 and list(ys) == [y + dy] * 2]
            if math.isnan(low):
                assert not ends, row.family
                continue
            assert len(ends) == 1, f"{row.family}: {len(ends)} lines at y {y + dy}, not 1"
            ((line, xs),) = ends
            assert line.get_linewidth() == style["linewidth"], row.family
            assert list(xs) == [max(low, x_low), min(high, x_high)], row.family
            heads = {(ln.get_marker(), xs[0]) for ln, xs, ys in lines if list(ys) == [y + dy]}
            arrows = {("<", x_low)} if math.isinf(low) else set()
            assert heads == arrows | ({(">", x_high)} if math.isinf(high) else set()), row.family
        estimate = [list(xs) for ln, xs in at if ln.get_marker() == "o"]
        assert estimate == ([] if math.isnan(row.hl) else [[row.hl]]), row.family
    assert len(ax.patches) == 1, "no margin band (axvspan)"
    (band,) = ax.patches  # axvspan: x in data, y the whole axes
    assert [band.get_x(), band.get_x() + band.get_width()] == pytest.approx([-0.02, 0.02])
    zero = [ln for ln, xs, ys in lines if list(xs) == [0, 0]]
    assert [to_hex(ln.get_color()) for ln in zero] == [WORD_COLORS["reference"]]
    assert drawn["left"][1] == "#2 onecycle x0.5\nalso: momentum cycled 0.85-0.95"
    assert drawn["left"][3].endswith("also: optimizer SGDScheduleFree;\nmomentum 0")
    right = dict(zip(frame["family"], drawn["right"]))
    assert right["constant"] == (
        f"worse\nlook 2, n=20, 2 failed\ndiff {layout.level_text(0.99)}, equiv "
        f"{layout.level_text(0.98)}",
        WORD_COLORS["worse"],
    )
    assert right["onecycle"][0].startswith("equivalent (could be best)\nlook 1, n=10, 0 failed")
    assert right["cyclic"][0] == "undecided\nlook 0, n=0, 0 failed"
    assert {"difference test's HL interval", "equivalence test's HL interval", "unbounded"} <= set(
        drawn["legend"]
    ) and "equivalence margin ±0.02" in drawn["legend"]
    assert png_size(drawn["path"])[0] == expected_width("verdict_forest")


def test_tuning_curves_name_a_familys_also_changes(tmp_path):
    """tuning_curves.png's legend: a family that trains otherwise than its schedule (tuning.csv's
    also_changes) says so; one that does not is its name alone."""
    from lrstudy import verdict_plots

    rows = [
        {"family": f, "multiplier": m, "also_changes": c, "mean_final_valid_loss": v}
        | {"ci_low": v / 2, "ci_high": v * 2, "eligible": True, "selected": m == 1}
        for f, c in (("step", ""), ("onecycle", "momentum cycled 0.85-0.95"))
        for m, v in ((0.5, 0.3), (1, 0.2), (2, 0.4))
    ]
    tuning = pd.read_csv(io.StringIO(pd.DataFrame(rows).to_csv(index=False)))
    legend = []

    def save(fig, path):
        legend.extend(t.get_text() for t in fig.axes[0].get_legend().get_texts())
        plot_base.save(fig, path)

    verdict_plots.draw_tuning(tuning, tmp_path / "tuning.png", save)
    assert legend == ["step", "onecycle (also: momentum cycled 0.85-0.95)"]
