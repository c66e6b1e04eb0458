"""The study manifest: what every stage reads of the study's shape. Torch-free; the Snakefile, the
rules, lrstudy.plots, lrstudy.report, the captions (through the rules' params) and the scripts in
workflow/benchmarks and workflow/scripts import it.

One place for what the figures, the Markdown report and `snakemake --report` share:

- the sections, their figures (the source report's file names) and what each shows, FIGURES,
  each figure's category in the HTML report (REPORT_CATEGORIES, figure_kinds) and its caption
  (caption_for; CAPTION_PARAMS: the text the captions take from here);
- the files of a run: SEED_FOLDER, SEED_RECORD (run.json), SEED_SUGGESTION and SUGGESTION (the
  range test's suggestion.json per seed and combined), RECORD_GLOB;
- the seeds' band (CONFIDENCE, BAND_QUANTILE, BAND_TEXT): the level lrstudy.plots draws and the
  words every caption uses for it; level_text: how any level is written (the verdict's too);
- the config schema's defaults that stages need where a run leaves a value out
  (RANGE_TEST_DEFAULTS, BEST_METRIC): read from workflow/schemas/config.schema.yaml, not restated;
- format_value / format_kwargs: every number the workflow writes for a person (figure titles,
  headings, code lines, error messages);
- differing: which keyword arguments a section compares, from the values its runs used
  (run.json), so a figure title (section_title) and the report's heading agree.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import yaml

# The figures of each section in the order drawn, {file name: kind}: the source report's names
# (extension lower-case here). The kind says what lrstudy.plots draws (plots.DRAW) and is the
# figure's subcategory in the HTML report; report_template places the source's figures in
# report.md. A figure added here is drawn and shown in the HTML report, with its caption
# workflow/report/NAME.rst or else its kind's (caption_for). "best": the best families.
SECTION_FIGURES = {
    "range_test": {"ExponentiallyIncLR": "learning rate", "ExponentiallyIncLoss": "loss"},
    "step": {"StepDecLR": "learning rate", "StepDecLoss": "loss", "2_legend": "legend"},
    "exponential": {
        "ExponentiallyDecLR": "learning rate",
        "ExponentiallyDecLoss": "loss",
        "3_legend": "legend",
    },
    "onecycle": {"OneCycleLR": "learning rate", "OneCycleLoss": "loss", "4_legend": "legend"},
    "onecycle_max_lr": {
        "OneCycleLR_DiffMax": "learning rate",
        "OneCycleLoss_DiffMax": "loss",
        "5_legend": "legend",
    },
    "cyclic": {"CyclicLR": "learning rate", "CyclicLoss": "loss", "6_legend": "legend"},
    "best": {
        "compare3bestLR": "learning rate",
        "compare3bestLoss": "loss",
        "7_legend": "legend",
        "compare3bestTestLoss": "test loss",
    },
}
# Category of each section in `snakemake --report`: the source report's numbering.
REPORT_CATEGORIES = {
    "range_test": "1 range test",
    "step": "2 step",
    "exponential": "3 exponential",
    "onecycle": "4 onecycle",
    "onecycle_max_lr": "4 onecycle max_lr",
    "cyclic": "5 cyclic",
    "best": "6 best three",
}
# Beyond the source, in the HTML report only: the verdict's tables and its two figures, each
# {figure name: kind}. The Markdown report keeps the source's layout.
VERDICT_CATEGORY = "7 verdict"
REFERENCE = "reference"  # verdict.csv's word for tuning's pick, the family the others face
VERDICT_TABLES = "tables"  # its subcategory of the tables (the figures': what each shows)
VERDICT_FIGURES = {"tuning_curves": "tuning curves", "verdict_forest": "paired differences"}

# ------------------------------------------------------------------------------- run files
# Where every file of a run lives, relative to the study's folder (the train rule's outputs and
# the range test's suggestions beside them). The rules pass these files to every later stage.
RUNS_FOLDER = "results/runs"
SEED_FOLDER = RUNS_FOLDER + "/{run}/seed{seed}"
SEED_RECORD = SEED_FOLDER + "/run.json"  # written last by a training job: the seed is complete
SEED_SUGGESTION = SEED_FOLDER + "/suggestion.json"  # one seed's range-test suggestion
SUGGESTION = RUNS_FOLDER + "/{run}/suggestion.json"  # combined across the seeds
RECORD_GLOB = "*/seed*/run.json"  # every run.json under RUNS_FOLDER


def first_records(paths) -> dict:
    """{run: run.json of its lowest seed} of the run.json files given (what a section's figure
    title and report heading read of a run: the scheduler's kwargs as trained)."""
    records = [json.loads(Path(path).read_text()) for path in paths]
    first = {}
    for record in sorted(records, key=lambda record: record.get("seed", 0)):
        first.setdefault(str(record["run"]), record)
    return first


def suggestions_by_run(paths) -> dict:
    """{run: combined suggestion.json} of the range tests' files given."""
    found = [json.loads(Path(path).read_text()) for path in paths]
    return {str(suggestion.get("run")): suggestion for suggestion in found}


# --------------------------------------------------------------------------- schema defaults
SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


@functools.cache
def schema() -> dict:
    """workflow/schemas/config.schema.yaml: the one place the config's defaults are stated."""
    return yaml.safe_load(SCHEMA.read_text())


def schema_defaults(*path: str) -> dict:
    """{key: default} of the schema's object at `path` (property names; `*` a mapping's values)."""
    node = schema()
    for key in path:
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return {k: v["default"] for k, v in node["properties"].items() if "default" in v}


# The range test's settings where a run leaves them out (start_lr, end_lr, mode, steps,
# smooth_beta, stop_factor, ...), and the metric that chooses settings and the best families.
RANGE_TEST_DEFAULTS = schema_defaults("runs", "*", "range_test")
BEST_METRIC = schema_defaults("report")["best_metric"]

# ------------------------------------------------------------------------ the seeds' band
# lrstudy.plots shades this interval around the seeds' mean; the captions describe it in these
# words (CAPTION_PARAMS, through the params of the rule that draws the figures).
CONFIDENCE = 0.95
BAND_QUANTILE = (1 + CONFIDENCE) / 2  # the t quantile of a two-sided interval: 0.975


def level_text(level: float) -> str:
    """A confidence level as the figures, pages and captions write it: 0.95 -> `95 %`,
    0.98543 -> `98.5 %`, 0.99991 -> `99.99 %` (never `100 %` short of 1): the verdict's intervals
    are at the levels of their deciding look."""
    digits = 3
    while digits < 8 and level < 1 and float(f"{level * 100:.{digits}g}") >= 100:
        digits += 1
    return f"{level * 100:.{digits}g} %"


LEVEL_TEXT = level_text(CONFIDENCE)
BAND_TEXT = f"{LEVEL_TEXT} t-interval (mean ± t({BAND_QUANTILE:g}, n−1)·sd/√n)"
# What the figures' captions take from here (`{{ snakemake.params.band }}` and so on).
CAPTION_PARAMS = {
    "band": BAND_TEXT,
    "level": LEVEL_TEXT,
    "smooth_beta": RANGE_TEST_DEFAULTS["smooth_beta"],
}


CAPTIONS = Path(__file__).resolve().parents[1] / "report"  # workflow/report


def caption_file(name: str) -> str:
    """The caption of a figure or table as a rule names it (workflow/report/NAME.rst)."""
    return f"../report/{name}.rst"


def caption_for(name: str, kind: str) -> str:
    """A section figure's caption: its own (NAME.rst), else its kind's (kind_KIND.rst)."""
    own = (CAPTIONS / name).with_suffix(".rst").is_file()
    return caption_file(name if own else "kind_" + kind.replace(" ", "_"))


def figure_kinds() -> list[tuple[str, str, str]]:
    """(section, figure name, kind) of every image of the report, in a fixed order; kind is the
    HTML report's subcategory (learning rate, loss, legend, test loss)."""
    return [
        (s, name, kind) for s, figures in SECTION_FIGURES.items() for name, kind in figures.items()
    ]


FIGURES = [name for _, name, _ in figure_kinds()]  # the 21 images, without extension
# Sections of config `report.extra_sections` (after the source's): the HTML report only, so the
# Markdown report keeps the source's layout.
EXTRA_FIRST_CATEGORY = 8
EXTRA_KINDS = ("learning rate", "loss")


def extra_figures(section: str) -> tuple[str, str]:
    """The LR and the loss figure of an extra section, named after it."""
    return f"{section}_LR", f"{section}_Loss"


# ------------------------------------------------------------------------------- formatting
def format_value(value) -> str:
    """Numbers as a person writes them: 1e-5 (not 1e-05), 10, 0.999, 1.1; lists of them likewise."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(format_value, value)) + "]"
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # a table's number (numpy's repr is `np.float64(0.5)`) as Python's
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def format_kwargs(kwargs: dict) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in kwargs.items())


# ------------------------------------------------------------------------ what a section compares
def used_kwargs(config: dict, run: str, record: dict | None) -> dict:
    """The run's scheduler kwargs as the config writes them (its order), with `auto` values
    replaced by the values the run used (run.json) when it has them."""
    kwargs = dict(config["runs"][run].get("kwargs") or {})
    used = ((record or {}).get("scheduler") or {}).get("kwargs") or {}
    for key, value in kwargs.items():
        if value == "auto" and used.get(key) is not None:
            kwargs[key] = used[key]
    return kwargs


def _same(value):
    """A value as compared across runs: 1 == 1.0, `auto` only equals `auto`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return repr(value)


def differing(config: dict, runs: list[str], records: dict) -> tuple[list[str], dict]:
    """Keyword names whose values differ between the runs (the values they used: `records` maps a
    run to its run.json, or lacks it), and every run's kwargs. The one answer to "what does this
    section compare" for the figure titles and the report's headings."""
    kwargs = {run: used_kwargs(config, run, records.get(run)) for run in runs}
    names = dict.fromkeys(k for kw in kwargs.values() for k in kw)
    keys = [k for k in names if len({_same(kw.get(k)) for kw in kwargs.values()}) > 1]
    return keys, kwargs


def range_test_settings(config: dict, run: str) -> dict:
    return {**RANGE_TEST_DEFAULTS, **(config["runs"][run].get("range_test") or {})}


def section_title(section: str, runs: list[str], config: dict, records: dict | None = None) -> str:
    """A section's figure title: the range test's span, or the scheduler class and what the
    section compares (`ExponentialLR: different gamma`), else the classes (`OneCycleLR vs ...`)."""
    specs = config["runs"]
    if section == "range_test":
        test = range_test_settings(config, runs[0])
        mode = "" if test["mode"] == "exponential" else f" ({test['mode']})"
        start, end = format_value(test["start_lr"]), format_value(test["end_lr"])
        return f"LR range test {start} to {end}{mode}"
    classes = list(dict.fromkeys(specs[r].get("scheduler", "range test") for r in runs))
    if len(classes) == 1 and len(runs) > 1:
        keys, _ = differing(config, runs, records or {})
        if keys:
            return f"{classes[0]}: different {', '.join(keys)}"
    return " vs ".join(classes)
