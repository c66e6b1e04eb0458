"""A model and data pair that exists only outside the repository, named by `python_path`, trains
from its config alone through `snakemake --profile slurm` (CI's cluster, .ci/slurm.sh): an `auto`
run and the range test it reads, on the nodes, and the local rules between them (the whole study
through sbatch is tests/test_slurm.py's)."""

import json
import shutil

import pytest
import yaml

from .slurm_ci import QUICK_STATUS, require_ci_cluster
from .util import ROOT, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_a_package_outside_the_repository_runs_through_sbatch(tmp_path):
    require_ci_cluster()
    work, elsewhere = tmp_path / "clone", tmp_path / "elsewhere" / "mine"
    work.mkdir()
    for name in ("Snakefile", "workflow", "config", "slurm", "report_template", "envs"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, work / name)
    # the example's package under another name, in a folder the repository knows nothing of
    shutil.copytree(ROOT / "examples" / "breast_cancer" / "cancer_mlp", elsewhere / "my_net")
    config = yaml.safe_load((ROOT / "examples" / "breast_cancer" / "config.yaml").read_text())
    config["model"]["factory"] = "my_net.model:mlp"
    config["dataset"]["factory"] = "my_net.data:splits"
    config["python_path"] = ["."]  # relative to the config file: elsewhere/mine
    (elsewhere / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(
        "results/runs/onecycle/seed0/run.json", "--profile", "slurm",
        "--configfile", elsewhere / "config.yaml", "--config", "device=auto",
        *QUICK_STATUS, cwd=work, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    slurm_logs = sorted(p.name for p in (work / ".snakemake" / "slurm_logs").iterdir())
    assert slurm_logs == ["rule_train"]
    records = list((work / "results" / "runs").glob("*/seed*/run.json"))
    # onecycle's `auto` max_lr meets momentum 0.85 (cycled): of the range tests with its optimizer
    # the closest is the families' (momentum 0.9, range_test-families), not range_test's 0
    assert {path.parts[-3] for path in records} == {"range_test-families", "onecycle"}
    for path in records:
        record = json.loads(path.read_text())
        assert record["host"]["slurm_job_id"], path
        assert record["code"]["model.factory"]["module_file"] == str(
            (elsewhere / "my_net" / "model.py").resolve()
        )
