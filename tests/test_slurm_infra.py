"""The CI SLURM cluster (.ci/slurm.sh) and the Snakemake profile slurm/config.yaml.

The cluster tests need the cluster `.ci/slurm.sh start` sets up (as root) and run only against it
(tests/slurm_ci.py): against any other cluster they skip, saying why, and submit nothing; with
CI=true a missing CI cluster is a failure instead.
"""

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .slurm_ci import IN_CI, require_ci_cluster

# The cluster tests carry the `slurm` mark; the profile checks and the test with a stand-in for a
# user's cluster run everywhere.
slurm_mark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "slurm" / "config.yaml"
FINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
}


def skip_or_fail(reason):
    """Skip outside CI; in CI (CI=true) a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"CI=true, so this is not skipped: {reason}")
    pytest.skip(reason)


def run(*cmd, timeout=20):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def slurm():
    require_ci_cluster()


def squeue_states(job_ids):
    out = run("squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T").stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


@slurm_mark
def test_node_has_two_gpus_in_a_default_partition_not_named_main(slurm):
    partitions = run("sinfo", "-h", "-o", "%P").stdout.split()
    default = [p.rstrip("*") for p in partitions if p.endswith("*")]
    assert len(partitions) == len(default) == 1 and default != ["main"], partitions
    out = run("sinfo", "-h", "-N", "-p", default[0], "-o", "%N %T %G").stdout.split()
    assert len(out) == 3, f"expected one node in partition {default[0]}, sinfo says {out}"
    _, state, gres = out
    assert state.rstrip("*") in {"idle", "mixed", "allocated", "completing"}, state
    assert gres.startswith("gpu:2"), gres


@slurm_mark
def test_two_gpu_jobs_run_side_by_side_on_distinct_gpus(slurm, tmp_path):
    # Each job writes its CUDA_VISIBLE_DEVICES (batch step and an srun step),
    # then waits for the other one's file: that proves they ran at once.
    script = (
        'echo "$CUDA_VISIBLE_DEVICES" > {me}.cvd; '
        "srun -n1 printenv CUDA_VISIBLE_DEVICES > {me}.srun; "
        "for i in $(seq 60); do [ -e {other}.cvd ] && exit 0; sleep 0.5; done; "
        'echo "other job never ran at the same time" >&2; exit 3'
    )
    ids = []
    try:
        for me, other in (("a", "b"), ("b", "a")):
            r = run(
                "sbatch",
                "--parsable",
                "--gpus=1",
                "-n1",
                "-c1",
                "--mem=100",
                "-t",
                "2",
                "-J",
                f"slurm-infra-{me}",
                f"--chdir={tmp_path}",
                f"--output={tmp_path}/{me}.log",
                f"--wrap={script.format(me=me, other=other)}",
            )
            assert r.returncode == 0, f"sbatch failed: {r.stderr}"
            ids.append(r.stdout.strip().split(";")[0])

        deadline = time.monotonic() + 50
        while True:
            states = squeue_states(ids)
            if len(states) == 2 and set(states.values()) <= FINAL:
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jobs not finished after 50 s: {states}\n" + run("squeue", "-t", "all").stdout
                )
            time.sleep(0.5)
    finally:
        pending = [i for i, s in squeue_states(ids).items() if s not in FINAL] if ids else []
        if pending:
            run("scancel", *pending)

    logs = {
        m: (tmp_path / f"{m}.log").read_text() if (tmp_path / f"{m}.log").exists() else ""
        for m in "ab"
    }
    assert set(states.values()) == {"COMPLETED"}, f"{states}, logs: {logs}"
    cvd = {m: (tmp_path / f"{m}.cvd").read_text().strip() for m in "ab"}
    assert sorted(cvd.values()) == ["0", "1"], cvd
    # srun inside the job works and sees the job's GPU
    srun = {m: (tmp_path / f"{m}.srun").read_text().strip() for m in "ab"}
    assert srun == cvd, (srun, logs)


def test_profile_names_slurm_executor_and_status_command():
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    # no accounting on the CI cluster, so sacct cannot be used for job status
    assert profile["slurm-status-command"] == "squeue"
    assert profile["retries"] >= 1
    assert profile["rerun-incomplete"] is True
    resources = dict(r.split("=", 1) for r in profile["default-resources"])
    # any cluster: sbatch takes the cluster's default partition and the user's default account
    assert "slurm_partition" not in resources and "slurm_account" not in resources, resources


def test_profile_slurm_keys_are_real_plugin_options():
    try:  # importing it runs `which sacct` etc., hence the broad except
        from snakemake_executor_plugin_slurm import ExecutorSettings
    except Exception as e:
        skip_or_fail(f"cannot import snakemake_executor_plugin_slurm: {e!r}")
    fields = {f.name.replace("_", "-") for f in dataclasses.fields(ExecutorSettings)}
    profile = yaml.safe_load(PROFILE.read_text())
    used = {k[len("slurm-") :] for k in profile if k.startswith("slurm-")}
    assert used <= fields, f"unknown plugin options: {sorted(used - fields)}"


# (a backslash at the end of a line here is Python's: the line goes on in the next one)
FAKE_TOOL = """#!/bin/sh
# stand-in for a user's cluster: its controller answers, and any submission is recorded
case "$0 $1" in
  *scontrol\\ show) printf 'ClusterName             = users-hpc\\n\
SlurmctldHost[0]        = login1\\n' ;;
  *scontrol\\ ping) echo 'Slurmctld(primary) at login1 is UP' ;;
  *sinfo*) echo 'gpu*' ;;
  *) echo "$0 $*" >> "$SUBMITTED"; echo 4242 ;;
esac
"""


@pytest.mark.parametrize("ci", [False, True], ids=["user", "ci"])
def test_another_cluster_gets_no_job_and_the_tests_say_why(tmp_path, ci):
    """A user's cluster answers sinfo (partition gpu): the SLURM tests submit nothing to it; they
    skip naming the cluster, or fail in CI (CI=true), where the CI cluster should have answered."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("sinfo", "sbatch", "squeue", "scontrol", "scancel", "srun", "sacct"):
        (fake / tool).write_text(FAKE_TOOL)
        (fake / tool).chmod(0o755)
    submitted = tmp_path / "submitted.log"
    env = {
        **os.environ,
        "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
        "SUBMITTED": str(submitted),
        "CI": str(ci).lower(),
    }
    tests = [str(REPO / "tests" / "test_slurm.py"), str(REPO / "tests" / "test_slurm_infra.py")]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rsE",
            "-p",
            "no:cacheprovider",
            "-m",
            "slurm",
            *tests,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert not submitted.exists(), f"a job went to the user's cluster: {submitted.read_text()}"
    assert "'users-hpc'" in out and "never submit jobs to another cluster" in out, out[-3000:]
    if ci:
        assert proc.returncode == 1 and "4 error" in out, out[-3000:]
    else:
        assert proc.returncode == 0 and "4 skipped" in out, out[-3000:]
