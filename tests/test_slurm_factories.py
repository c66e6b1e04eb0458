"""A model and data pair that exists only outside the repository, named by `python_path`, runs the
study from its config alone through `snakemake --profile slurm` (CI's cluster, .ci/slurm.sh)."""

import json
import shutil

import pytest
import yaml

from .slurm_ci import require_ci_cluster
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
        "--profile", "slurm", "--configfile", elsewhere / "config.yaml", "--config",
        "device=auto", cwd=work, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert (work / "results" / "report" / "report.md").stat().st_size > 0
    assert (work / "results" / "tables" / "verdict.csv").is_file()
    slurm_logs = sorted(p.name for p in (work / ".snakemake" / "slurm_logs").iterdir())
    assert slurm_logs == ["rule_confirm", "rule_train", "rule_tune"]
    records = list((work / "results" / "runs").glob("*/seed*/run.json"))
    assert records
    for path in records:
        record = json.loads(path.read_text())
        assert record["host"]["slurm_job_id"], path
        assert record["code"]["model.factory"]["module_file"] == str(
            (elsewhere / "my_net" / "model.py").resolve()
        )
