"""A training job cancelled while it runs under `snakemake --profile slurm` on the CI cluster
(.ci/slurm.sh): the profile's retry resubmits it, it resumes from its newest checkpoint, and the
finished run holds the bytes of a run that was never interrupted.

Two cancellations: `scancel --signal=USR1` (the early warning the profile asks SLURM for, before
a time limit or a preemption) and a plain `scancel` (SIGTERM, then SIGKILL after KillWait). Both
reach the training process, which checkpoints at its next step and exits.
"""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from .conftest import JOB_TIMEOUT, job_env, raw_config, spec_of, validated
from .slurm_ci import QUICK_STATUS, require_ci_cluster
from .test_resume import STEPS_PER_EPOCH, assert_no_checkpoints, assert_same_bytes, checkpoint_step
from .util import VENV_BIN

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

RUN = "onecycle"
LONGER = {"epochs": 12, "eval_every": 20, "seeds": [0]}  # ~5 s of training: time to cancel it


@pytest.fixture(scope="module")
def cluster():
    require_ci_cluster()


def running_job(study) -> str | None:
    """The id of this study's SLURM job that is running now (by its working directory)."""
    shown = subprocess.run(
        ["squeue", "-h", "-t", "R", "-o", "%i %Z"], capture_output=True, text=True, check=True
    ).stdout
    ids = [line.split()[0] for line in shown.splitlines() if line.split()[1:] == [str(study)]]
    return ids[0] if ids else None


def jobs_of(study) -> list[str]:
    """Every SLURM job this study submitted (finished ones stay listed: MinJobAge)."""
    shown = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i %T %Z"], capture_output=True, text=True, check=True
    ).stdout
    return [" ".join(line.split()[:2]) for line in shown.splitlines() if str(study) in line]


# Two classes, not one parametrised test: each is a pytest-xdist unit of its own (`--dist
# loadscope`), so the two cancellations, which mostly wait on SLURM, wait side by side.
class TestUSR1:
    def test_a_cancelled_training_job_is_retried_and_resumes(
        self, cluster, trainer, workflow_copy, digits_data, tmp_path
    ):
        cancelled_job_resumes(
            ["--signal=USR1"], "SIGUSR1", trainer, workflow_copy, digits_data, tmp_path
        )


class TestPlainCancel:
    def test_a_cancelled_training_job_is_retried_and_resumes(
        self, cluster, trainer, workflow_copy, digits_data, tmp_path
    ):
        cancelled_job_resumes([], "SIGTERM", trainer, workflow_copy, digits_data, tmp_path)


def cancelled_job_resumes(cancel, caught, trainer, workflow_copy, digits_data, tmp_path):
    raw = raw_config(**LONGER)
    spec = spec_of(validated(raw), RUN, 0)
    study = workflow_copy(raw)
    (study / "results" / "data").mkdir(parents=True)
    for suffix in (".pt", ".json"):  # the prepared data, so that only `train` runs
        shutil.copy2(
            digits_data.with_suffix(suffix), study / "results" / "data" / f"digits{suffix}"
        )
    folder = study / "results" / "runs" / RUN / "seed0"
    command = [
        str(VENV_BIN / "snakemake"),
        "--profile",
        "slurm",
        f"results/runs/{RUN}/seed0/run.json",
        *QUICK_STATUS,
    ]
    log = tmp_path / "snakemake.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            command,
            cwd=study,
            env=job_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + JOB_TIMEOUT
        while checkpoint_step(folder) is None:  # the job runs and has saved its first epoch
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.05)
        job = running_job(study)
        assert job, jobs_of(study)
        subprocess.run(["scancel", *cancel, job], check=True)
        assert proc.wait(timeout=JOB_TIMEOUT) == 0, log.read_text()[-6000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    submitted = jobs_of(study)
    assert len(submitted) == 2 and job in [s.split()[0] for s in submitted], submitted  # a retry
    job_log = (study / "results" / "logs" / "train" / f"{RUN}.log").read_text()
    resumed = [line for line in job_log.splitlines() if "resuming from checkpoint" in line]
    assert resumed, job_log[-3000:]
    step = int(resumed[0].split("(step ")[1].split(",")[0])
    assert step % STEPS_PER_EPOCH != 0, resumed  # the checkpoint the signal wrote, mid-epoch
    # Under SIGUSR1 the cancelled attempt says so in its SLURM log (which holds the job log's
    # tail, SHOW_LOG: the job's shell ignores SIGUSR1 as Snakemake does). A plain scancel sends
    # SIGTERM to that shell too, which may end before it prints the tail: there the mid-epoch
    # step above is the evidence.
    if caught == "SIGUSR1":
        slurm_logs = "".join(
            p.read_text() for p in (study / ".snakemake" / "slurm_logs").rglob("*.log")
        )
        checkpoint = f"results/runs/{RUN}/seed0/ckpt-{step:07d}"
        assert f"caught {caught}: checkpoint {checkpoint} written at step {step}" in slurm_logs
    assert json.loads((folder / "run.json").read_text())["spec"] == spec.to_dict()
    assert_same_bytes(folder, trainer.reference(spec))
    assert_no_checkpoints(folder)
