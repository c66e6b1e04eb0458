"""lrstudy.layout: the report's layout and number formatting, shared by the figures, the report and
the Snakefile; a figure title and its report heading compare the same values."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lrstudy import layout, report

ROOT = Path(__file__).resolve().parents[1]


def onecycle_config(first, second) -> dict:
    runs = {
        "a": {"scheduler": "OneCycleLR", "kwargs": {"max_lr": first}},
        "b": {"scheduler": "OneCycleLR", "kwargs": {"max_lr": second}},
    }
    return {"runs": runs}


def record(max_lr) -> dict:
    return {"scheduler": {"class": "OneCycleLR", "kwargs": {"max_lr": max_lr}}}


@pytest.mark.parametrize(
    "first, second, records, differs",
    [
        (1, 1.0, {}, False),  # equal numbers written differently
        (1, 1.1, {}, True),
        ("auto", 0.5, {"a": record(0.5)}, False),  # `auto` became the other run's value
        ("auto", 0.5, {"a": record(0.25)}, True),
    ],
)
def test_title_and_heading_compare_the_same_values(first, second, records, differs):
    config = onecycle_config(first, second)
    title = layout.section_title("onecycle_max_lr", ["a", "b"], config, records)
    phrase = report.comparing_phrase(config, ["a", "b"], records)
    assert (title == "OneCycleLR: different max_lr") is differs
    assert (phrase == " (comparing different max_lr)") is differs


def test_range_test_title_uses_the_one_formatter():
    config = {"runs": {"r": {"range_test": {"start_lr": 1e-05, "end_lr": 10.0}}}}
    assert layout.section_title("range_test", ["r"], config) == "LR range test 1e-5 to 10"


def test_figures_and_categories():
    assert len(layout.FIGURES) == 21 and layout.FIGURES[-1] == "compare3bestTestLoss"
    assert {s for s, _, _ in layout.figure_kinds()} == set(layout.REPORT_CATEGORIES)


def test_layout_imports_nothing_heavy():
    """The Snakefile imports it: the standard library and yaml (Snakemake's own), never torch."""
    tree = ast.parse((ROOT / "workflow" / "lrstudy" / "layout.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "functools", "json", "pathlib", "yaml"}


def test_defaults_are_the_schemas():
    """The range test's and the report's defaults the stages fall back on are the config schema's
    (read here from the YAML itself), and the range-test analysis uses them."""
    import yaml

    from lrstudy import rangetest

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    run = schema["properties"]["runs"]["additionalProperties"]["properties"]
    test = {k: v["default"] for k, v in run["range_test"]["properties"].items() if "default" in v}
    assert layout.RANGE_TEST_DEFAULTS == test
    assert (
        (rangetest.BETA, rangetest.STOP_FACTOR)
        == (0.98, 4)
        == (
            test["smooth_beta"],
            test["stop_factor"],
        )
    )
    report = schema["properties"]["report"]["properties"]
    assert layout.BEST_METRIC == report["best_metric"]["default"] == "final_valid_loss"


def test_run_files_follow_one_pattern():
    record = layout.SEED_RECORD.format(run="step", seed=3)
    assert record == "results/runs/step/seed3/run.json"
    assert Path(record).match(f"{layout.RUNS_FOLDER}/{layout.RECORD_GLOB}")
    assert layout.SEED_SUGGESTION.format(run="r", seed=0) == "results/runs/r/seed0/suggestion.json"
    assert layout.SUGGESTION.format(run="r") == "results/runs/r/suggestion.json"
