"""The workflow as a user runs it: the DAG, lint, and whole studies end to end."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lrstudy import families
from lrstudy.layout import FIGURES

from .conftest import raw_config
from .util import ROOT, VENV_BIN, snakemake, validated


@pytest.mark.slow
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
    # one job per run trains all its seeds; and the range test the families' optimizer needs
    assert int(counts["train"]) == len(config["runs"]) + 1
    # per family: its grid, its first round's choice, the choice; what comes after a checkpoint
    # (a point beyond the grid, the confirmation's looks) is planned once the checkpoint ran
    for rule in ("tune", "select_setting", "settle_setting"):
        assert int(counts[rule]) == len(config["families"])
    assert not {"tune_beyond", "confirm", "judge_look"} & set(counts)
    tests = sum("range_test" in r for r in config["runs"].values()) + 1
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


@pytest.mark.slow
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
def test_seeds_list_from_the_command_line_plans_every_seed(workflow_copy):
    """`--config 'seeds=[0,1,2]'` (Snakemake reads the list's items as strings): the plan has the
    run.json of seeds 0, 1 and 2 for every run, and nothing else."""
    config = raw_config()
    folder = workflow_copy(config)
    proc = snakemake("-n", "--forceall", "--config", "seeds=[0,1,2]", cwd=folder)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    planned = set(re.findall(r"results/runs/([A-Za-z0-9][\w.-]*)/seed(\d+)/run\.json", proc.stdout))
    config = validated(config)  # with the range test its families need
    assert planned == {(run, seed) for run in config["runs"] for seed in ("0", "1", "2")} | (
        family_runs(config)
    )


def family_runs(config: dict, results: Path | None = None) -> set[tuple[str, str]]:
    """(run, seed) of what a study of `config` (validated) trains beyond its own runs: the range
    tests anchoring its families (those lrstudy.families.add_range_tests added among them) on
    `seeds` and every family's grid on the tuning seeds (`tune-<family>-x<multiplier>`): what a
    dry run plans (the rest waits for the tuning's choice, a checkpoint). With `results` (a
    finished study): also the grid points beyond the grid (tuning.csv), every family's first
    look's confirmation seeds (`confirm-<family>`) and each later look's seeds of the families its
    decision retrained (results/verdict/look<k>.json)."""
    tuning, looks = config["tuning"], families.look_seeds(config)
    anchors = {families.anchor_test(config, family) for family in config.get("families", {})}
    planned = {(run, str(s)) for run in anchors for s in config["seeds"]}
    for family in config.get("families", {}):
        for m in tuning["multipliers"]:
            planned |= {(f"tune-{family}-x{m:g}", str(s)) for s in tuning["seeds"]}
    if results is None:
        return planned
    planned |= {(f"confirm-{f}", str(s)) for f in config.get("families", {}) for s in looks[0]}
    for run in pd.read_csv(results / "tables" / "tuning.csv")["run"]:
        planned |= {(run, str(s)) for s in tuning["seeds"]}
    for look, seeds in enumerate(looks[1:], start=1):
        path = results / "verdict" / f"look{look}.json"
        continuing = json.loads(path.read_text())["continuing"] if path.exists() else []
        planned |= {(f"confirm-{f}", str(s)) for f in continuing for s in seeds}
    return planned


SHIPPED = sorted((ROOT / "config").glob("*.yaml"))


class TestShippedConfigs:
    """A class: a pytest-xdist work unit of its own (`--dist loadscope`)."""

    @pytest.mark.slow
    @pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
    def test_each_shipped_config_builds_its_dag(self, path, workflow_copy):
        """`snakemake -n --configfile config/X.yaml` plans every run and seed of X and the
        report, as shipped (mnist and cifar10 download their raw files in the job, so their DAG
        needs none here)."""
        config = yaml.safe_load(path.read_text())
        folder = workflow_copy(config)
        shutil.copy(path, folder / "config" / path.name)
        proc = snakemake("-n", "--forceall", "--configfile", f"config/{path.name}", cwd=folder)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        planned = set(
            re.findall(r"results/runs/([A-Za-z0-9][\w.-]*)/seed(\d+)/run\.json", proc.stdout)
        )
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
