"""The workflow as a user runs it: the DAG, lint, and whole studies end to end."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from lrstudy.layout import FIGURES, format_value

from .conftest import SHARED_STUDY, raw_config, run_study, study_raw_config
from .util import ROOT, VENV_BIN, snakemake, validated


def test_dry_run_builds_the_default_dag():
    proc = snakemake(
        "-n", "--forceall", "--nolock", "--quiet", "rules"
    )  # the whole DAG, whatever results/ holds
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    counts = dict(
        line.split()[:2]
        for line in proc.stdout.splitlines()
        if line.strip() and line.split()[-1].isdigit() and len(line.split()) == 2
    )
    assert int(counts["train"]) == len(config["runs"])  # one job per run trains all its seeds
    for rule in ("tune", "select_setting", "confirm"):  # per family: its grid, choice, confirmation
        assert int(counts[rule]) == len(config["families"])
    tests = sum("range_test" in r for r in config["runs"].values())
    assert int(counts["suggest_lr"]) == tests * len(config["seeds"])  # one per range test and seed
    assert int(counts["combine_suggestions"]) == tests
    for rule in (
        "prepare_data",
        "aggregate",
        "plot_figures",
        "render_report",
        "all",
    ):
        assert int(counts[rule]) == 1


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert proc.returncode == 0 and "Lints for" not in proc.stdout + proc.stderr, proc.stdout[
        -3000:
    ]


def test_snakefmt_is_clean():
    files = ["Snakefile", *map(str, sorted((ROOT / "workflow" / "rules").glob("*.smk")))]
    proc = subprocess.run(
        [str(VENV_BIN / "snakefmt"), "--check", *files], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def final_valid_losses(runs_dir) -> dict[tuple[str, int], float]:
    """(run, seed) -> the last valid loss in the run's own evals.csv."""
    out = {}
    for path in sorted(runs_dir.glob("*/seed*/evals.csv")):
        evals = pd.read_csv(path)
        valid = evals[evals["split"] == "valid"].sort_values("step")
        out[path.parent.parent.name, int(path.parent.name.removeprefix("seed"))] = float(
            valid["loss"].iloc[-1]
        )
    return out


def report_images_are_the_figures(results) -> list[str]:
    """Every image report.md links: present in report/images, the bytes of its results/figures
    PNG; returns their names."""
    text = (results / "report" / "report.md").read_text()
    names = re.findall(r'<img src="images/([^"]+\.png)"', text)
    assert names, "report.md links no image"
    for name in names:
        image = (results / "report" / "images" / name).read_bytes()
        assert image[:8] == b"\x89PNG\r\n\x1a\n", name
        assert image == (results / "figures" / name).read_bytes(), name
    return names


@pytest.mark.slow
@SHARED_STUDY
def test_study_ends_with_the_tuning_and_verdict_tables(tiny_study, workflow_copy):
    """The tiny study, both stages: a summary row per run and seed; every family on the same grid
    and seeds; the selected grid point is the family's lowest mean final valid loss (recomputed
    from the runs' own evals.csv); confirmation seeds disjoint from the tuning seeds; a family's
    `auto` anchor is the range test's bound moved to its momentum, times the multiplier; the
    same run trained one seed per job has the bytes it has inside its run's job."""
    raw = study_raw_config()
    config = validated(raw)
    results = tiny_study / "results"
    summary = pd.read_csv(results / "tables" / "summary.csv")
    planned = {(r, str(s)) for r in config["runs"] for s in config["seeds"]} | family_runs(config)
    assert {(r, str(s)) for r, s in zip(summary["run"], summary["seed"])} == planned
    assert len(summary) == len(planned)
    tuning = pd.read_csv(results / "tables" / "tuning.csv")
    final = final_valid_losses(results / "runs")
    grid, seeds = config["tuning"]["multipliers"], config["tuning"]["seeds"]
    for family in config["families"]:
        rows = tuning[tuning["family"] == family]
        assert sorted(rows["multiplier"]) == sorted(grid)
        assert set(rows["seeds"]) == {" ".join(map(str, seeds))}
        means = {
            row.multiplier: np.mean([final[row.run, s] for s in seeds]) for row in rows.itertuples()
        }
        eligible = {m for m, ok in zip(rows["multiplier"], rows["eligible"]) if ok}
        assert rows.loc[rows["selected"], "multiplier"].tolist() == [
            min(eligible, key=lambda m: (means[m], m))
        ]
    # tuning evaluates what the choice reads, the final valid loss: never the test split, valid
    # at the start and the end; confirmation runs evaluate as the source's runs do
    for family in config["families"]:
        for m in grid:
            run_dir = results / "runs" / f"tune-{family}-x{m:g}" / "seed0"
            evals, steps = pd.read_csv(run_dir / "evals.csv"), pd.read_csv(run_dir / "steps.csv")
            assert set(evals["split"]) == {"valid"}
            assert sorted(evals["step"]) == [0, len(steps)]
        evals = pd.read_csv(results / "runs" / f"confirm-{family}" / "seed10" / "evals.csv")
        assert set(evals["split"]) == {"valid", "test"}
    verdict = pd.read_csv(results / "tables" / "verdict.csv", keep_default_na=False)
    confirm = set(config["tuning"]["confirm_seeds"])
    assert not confirm & set(seeds)
    for row in verdict.itertuples():
        assert set(map(int, row.seeds.split())) == confirm and row.n_seeds == len(confirm)
    assert sorted(verdict["rank"]) == list(range(1, len(config["families"]) + 1))
    assert set(verdict["verdict"]) <= {"reference", "better", "worse", "equivalent", "undecided"}
    assert (verdict["verdict"] == "reference").sum() == 1
    # the onecycle family's `auto` max_lr: the range test's bound x (1 - 0.85) (its peak meets
    # base_momentum 0.85; the range test trains at momentum 0), x the grid point's multiplier
    bounds = json.loads((results / "runs" / "range_test" / "suggestion.json").read_text())
    for m in grid:
        run = json.loads(
            (results / "runs" / f"tune-onecycle-x{m:g}" / "seed0" / "run.json").read_text()
        )
        assert run["scheduler"]["kwargs"]["max_lr"] == pytest.approx(
            bounds["bounds"]["max_lr"] * (1 - 0.85) * m, rel=1e-12
        )
    # the report shows every figure the study drew for the source's layout
    shown = report_images_are_the_figures(results)
    assert {name.removesuffix(".png") for name in shown} == set(FIGURES)

    per_seed = workflow_copy({**raw, "train_jobs": "per_seed"})
    target = "results/runs/step/seed1/steps.csv"
    run_study(per_seed, target)
    assert (per_seed / target).read_bytes() == (tiny_study / target).read_bytes()
    assert (per_seed / "results" / "logs" / "train" / "step" / "seed1.log").is_file()


@pytest.mark.slow
@SHARED_STUDY
def test_diverging_range_test_and_auto_bounds_flow_into_the_report(tiny_study):
    """The tiny study's range test (up to LR 1e3, where LeNet5 blows up on any CPU) ends
    `diverged`; aggregation, figures and report still succeed, and the `auto` run's code line in
    the report shows the bounds it trained with."""
    results = tiny_study / "results"
    range_run = json.loads((results / "runs" / "range_test" / "seed0" / "run.json").read_text())
    assert range_run["status"] == "diverged"
    assert range_run["steps"] < range_run["total_steps"] == 400
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert set(summary.loc[summary["run"] == "range_test", "status"]) == {"diverged"}
    bounds = json.loads((results / "runs" / "range_test" / "suggestion.json").read_text())["bounds"]
    auto = json.loads((results / "runs" / "cyclic_auto" / "seed0" / "run.json").read_text())
    # CyclicLR's floor meets max_momentum 0.9, its peak base_momentum 0.8 (the range test's
    # momentum is 0)
    used = auto["scheduler"]["kwargs"]
    assert used["base_lr"] == pytest.approx(bounds["base_lr"] * 0.1, rel=1e-12)
    assert used["max_lr"] == pytest.approx(bounds["max_lr"] * 0.2, rel=1e-12)
    text = (results / "report" / "report.md").read_text()
    assert (
        f"CyclicLR(optimizer, base_lr={format_value(used['base_lr'])}, "
        f"max_lr={format_value(used['max_lr'])}"
    ) in text
    assert "ExponentiallyIncLoss.png" in report_images_are_the_figures(results)


def test_seeds_list_from_the_command_line_plans_every_seed(workflow_copy):
    """`--config 'seeds=[0,1,2]'` (Snakemake reads the list's items as strings): the plan has the
    run.json of seeds 0, 1 and 2 for every run, and nothing else."""
    config = raw_config()
    folder = workflow_copy(config)
    proc = snakemake("-n", "--forceall", "--config", "seeds=[0,1,2]", cwd=folder)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    planned = set(re.findall(r"results/runs/([A-Za-z0-9][\w.-]*)/seed(\d+)/run\.json", proc.stdout))
    assert planned == {(run, seed) for run in config["runs"] for seed in ("0", "1", "2")} | (
        family_runs(validated(config))
    )


def family_runs(config: dict) -> set[tuple[str, str]]:
    """(run, seed) of every family's tuning runs (on the tuning seeds) and confirmation run (on the
    confirmation seeds): `tune-<family>-x<multiplier>`, `confirm-<family>`."""
    tuning = config["tuning"]
    planned = set()
    for family in config.get("families", {}):
        for m in tuning["multipliers"]:
            planned |= {(f"tune-{family}-x{m:g}", str(s)) for s in tuning["seeds"]}
        planned |= {(f"confirm-{family}", str(s)) for s in tuning["confirm_seeds"]}
    return planned


SHIPPED = sorted((ROOT / "config").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_each_shipped_config_builds_its_dag(path, workflow_copy):
    """`snakemake -n --configfile config/X.yaml` plans every run and seed of X and the report, as
    shipped (mnist and cifar10 download their raw files in the job, so their DAG needs none
    here)."""
    config = yaml.safe_load(path.read_text())
    folder = workflow_copy(config)
    shutil.copy(path, folder / "config" / path.name)
    proc = snakemake("-n", "--forceall", "--configfile", f"config/{path.name}", cwd=folder)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    planned = set(re.findall(r"results/runs/([A-Za-z0-9][\w.-]*)/seed(\d+)/run\.json", proc.stdout))
    assert planned == {
        (run, str(seed)) for run in config["runs"] for seed in config.get("seeds", [0])
    } | family_runs(validated(config))
    # the figures, then the report that shows them
    assert set(FIGURES) <= set(re.findall(r"results/figures/(\w+)\.png", proc.stdout))
    assert re.search(r"^\s*output: results/report/report\.md", proc.stdout, re.M)


def test_catalog_file_claims_what_the_workflow_has():
    """.snakemake-workflow-catalog.yml: its claims hold (conda env for every rule that runs code,
    report items declared); `snakemake --report` itself is tested in tests/test_report.py."""
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    usage = catalog["usage"]
    assert usage["report"] is True and set(usage["software-stack-deployment"]) >= {"conda"}
    assert (ROOT / "config" / "README.md").is_file() and (ROOT / "config" / "config.yaml").is_file()
    rules = (ROOT / "workflow" / "rules").glob("*.smk")
    text = {path.name: path.read_text() for path in rules}
    if usage["software-stack-deployment"]["conda"]:
        for name, body in text.items():
            for rule in re.split(r"^rule ", body, flags=re.MULTILINE)[1:]:
                if "shell:" in rule:
                    assert "conda:" in rule, (
                        f"{name}: rule {rule.split(':')[0]} runs without a conda env"
                    )
    assert "report(" in "".join(text.values())
