"""The study through `snakemake --profile slurm` on a real SLURM (started by .ci/slurm.sh)."""

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from lrstudy.layout import FIGURES

from .slurm_ci import QUICK_STATUS, require_ci_cluster
from .test_workflow import family_runs, report_images_are_the_figures
from .util import ROOT, snakemake, validated

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    """Only the cluster .ci/slurm.sh started (tests/slurm_ci.py); skipped elsewhere, failing in
    CI."""
    require_ci_cluster()


@pytest.fixture(scope="module")
def study(cluster, tmp_path_factory):
    """The tiny study, run in a copy of the workflow exactly as a user types it there."""
    work = tmp_path_factory.mktemp("slurm-study")
    for name in ("Snakefile", "workflow", "config", "slurm", "report_template", "envs"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, work / name)
    shutil.copy(ROOT / "tests" / "configs" / "tiny.yaml", work / "tiny.yaml")
    # The profile exactly as shipped: it names no partition, and the CI cluster's is not `main`.
    resources = yaml.safe_load((work / "slurm" / "config.yaml").read_text())["default-resources"]
    assert not [r for r in resources if r.startswith(("slurm_partition", "slurm_account"))], (
        resources
    )
    # device auto: the SLURM executor plans a GPU per training job although this node has none.
    proc = snakemake(
        "--profile",
        "slurm",
        "--configfile",
        "tiny.yaml",
        "--config",
        "device=auto",
        *QUICK_STATUS,
        cwd=work,
        timeout=1500,
    )
    return work, proc


def test_the_study_runs_through_sbatch_and_reports(study):
    work, proc = study
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    # every run and seed summarised; the report shows every figure the study drew
    config = validated(yaml.safe_load((work / "tiny.yaml").read_text()))
    summary = pd.read_csv(work / "results" / "tables" / "summary.csv")
    planned = {(r, str(s)) for r in config["runs"] for s in config["seeds"]}
    planned |= family_runs(config, work / "results")
    assert set(zip(summary["run"], summary["seed"].astype(str))) == planned
    shown = report_images_are_the_figures(work / "results")
    assert {name.removesuffix(".png") for name in shown} == set(FIGURES)
    slurm_logs = work / ".snakemake" / "slurm_logs"
    # the training rules went through sbatch (a point beyond the grid and a later look's seeds
    # where the study asked for them); everything else ran locally
    sent = {p.name for p in slurm_logs.iterdir()}
    assert {"rule_confirm", "rule_train", "rule_tune"} <= sent
    assert all(
        re.fullmatch(r"rule_(confirm|train|tune|tune_beyond|confirm_look\d+)", n) for n in sent
    )
    # Every training job went through sbatch asking for one GPU (finished jobs stay visible:
    # MinJobAge is large in .ci/slurm.sh).
    for path in (work / "results" / "runs").glob("*/seed*/run.json"):
        job_id = json.loads(path.read_text())["host"]["slurm_job_id"]
        shown = subprocess.run(
            ["scontrol", "show", "job", job_id], capture_output=True, text=True
        ).stdout
        assert "gres:gpu:1" in shown or "gres/gpu=1" in shown, shown
        # ... to the cluster's default partition, which the profile does not name
        partition = next(w.split("=", 1)[1] for w in shown.split() if w.startswith("Partition="))
        assert partition == default_partition() != "main", shown


def default_partition() -> str:
    names = subprocess.run(
        ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True
    ).stdout.split()
    return next(n.rstrip("*") for n in names if n.endswith("*"))


def test_each_training_job_got_its_own_gpu_from_slurm(study):
    work, proc = study
    assert proc.returncode == 0
    runs = [json.loads(p.read_text()) for p in (work / "results" / "runs").glob("*/seed*/run.json")]
    config = validated(yaml.safe_load((work / "tiny.yaml").read_text()))
    planned = {(r, str(s)) for r in config["runs"] for s in config["seeds"]}
    assert len(runs) == len(planned | family_runs(config, work / "results"))
    for run in runs:
        assert run["host"]["slurm_job_id"], run["run"]
        assert run["host"]["cuda_visible_devices"] in ("0", "1"), run["host"]
    # Jobs that trained at the same time never shared a GPU.
    spans = [
        (
            r["loop_started_at"],
            r["loop_started_at"] + r["loop_seconds"],
            r["host"]["cuda_visible_devices"],
        )
        for r in runs
    ]
    for i, (a0, a1, ga) in enumerate(spans):
        for b0, b1, gb in spans[i + 1 :]:
            if a0 < b1 and b0 < a1:
                assert ga != gb
