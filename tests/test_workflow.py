"""The workflow as a user runs it: the DAG, lint, and whole studies end to end."""

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from .conftest import raw_config, snakemake_cmd
from .util import ROOT, VENV_BIN, snakemake


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
    tests = sum("range_test" in r for r in config["runs"].values())
    assert int(counts["suggest_lr"]) == tests * len(config["seeds"])  # one per range test and seed
    for rule in (
        "prepare_data",
        "aggregate",
        "combine_suggestions",
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


def run_study(folder, *args, timeout=1200):
    proc = subprocess.run(
        snakemake_cmd("--cores", "2", *args),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return proc


@pytest.mark.slow
def test_default_study_finishes_with_a_row_per_run_and_seed(workflow_copy, tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    folder = workflow_copy(config)
    run_study(folder)
    summary = pd.read_csv(folder / "results" / "tables" / "summary.csv")
    want = {(run, seed) for run in config["runs"] for seed in config.get("seeds", [0])}
    assert set(zip(summary["run"], summary["seed"])) == want and len(summary) == len(want)
    assert (folder / "results" / "report" / "report.md").stat().st_size > 0
    best = pd.read_csv(folder / "results" / "tables" / "best.csv")
    assert len(best) == 3 and not set(best["run"]) & {"range_test"}
    # `auto` runs trained with the range test's bound at OneCycleLR's peak momentum 0.85 (the range
    # test's is 0)
    bounds = json.loads(
        (folder / "results" / "runs" / "range_test" / "suggestion.json").read_text()
    )["bounds"]
    run = json.loads(
        (folder / "results" / "runs" / "onecycle_auto" / "seed0" / "run.json").read_text()
    )
    assert run["scheduler"]["kwargs"]["max_lr"] == pytest.approx(
        bounds["max_lr"] * (1 - 0.85), rel=1e-12
    )
    assert (
        run["scheduler"]["config_kwargs"]["max_lr"] == "auto"
        and run["auto"]["range_test"] == "range_test"
    )


@pytest.mark.slow
def test_diverging_range_test_and_auto_bounds_flow_into_the_report(workflow_copy):
    """A range test up to LR 1e3 ends `diverged`; aggregation, figures and report still succeed, and
    the `auto` run's code line in the report shows the bounds it trained with."""
    config = raw_config(
        runs={"range_test": {"range_test": {"start_lr": 1.0e-3, "end_lr": 1000, "steps": 240}}}
    )
    folder = workflow_copy(config)
    run_study(folder)
    results = folder / "results"
    range_run = json.loads((results / "runs" / "range_test" / "seed0" / "run.json").read_text())
    assert range_run["status"] == "diverged" and range_run["steps"] < 240
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert summary.set_index("run").loc["range_test", "status"] == "diverged"
    bounds = json.loads((results / "runs" / "range_test" / "suggestion.json").read_text())["bounds"]
    auto = json.loads((results / "runs" / "cyclic_auto" / "seed0" / "run.json").read_text())
    # CyclicLR's floor meets max_momentum 0.9, its peak base_momentum 0.8 (the range test's
    # momentum is 0)
    used = auto["scheduler"]["kwargs"]
    assert used["base_lr"] == pytest.approx(bounds["base_lr"] * 0.1, rel=1e-12)
    assert used["max_lr"] == pytest.approx(bounds["max_lr"] * 0.2, rel=1e-12)
    from lrstudy.schedules import format_value

    text = (results / "report" / "report.md").read_text()
    assert (
        f"CyclicLR(optimizer, base_lr={format_value(used['base_lr'])}, "
        f"max_lr={format_value(used['max_lr'])}"
    ) in text
    assert all(p.stat().st_size > 0 for p in (results / "report" / "images").glob("*.png"))


def test_seeds_list_from_the_command_line_plans_every_seed(workflow_copy):
    """`--config 'seeds=[0,1,2]'` (Snakemake reads the list's items as strings): the plan has the
    run.json of seeds 0, 1 and 2 for every run, and nothing else."""
    config = raw_config()
    folder = workflow_copy(config)
    proc = snakemake("-n", "--forceall", "--config", "seeds=[0,1,2]", cwd=folder)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    planned = set(re.findall(r"results/runs/([A-Za-z0-9][\w.-]*)/seed(\d+)/run\.json", proc.stdout))
    assert planned == {(run, seed) for run in config["runs"] for seed in ("0", "1", "2")}


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
    }
    assert "results/report/report.md" in proc.stdout


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
