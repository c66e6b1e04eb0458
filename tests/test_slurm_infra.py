"""The CI SLURM cluster (.ci/slurm.sh) and the Snakemake profile slurm/config.yaml.

Needs running SLURM daemons: `.ci/slurm.sh start` (as root). Without them the
cluster tests are skipped, except when CI=true, where they fail instead.
"""
import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "slurm" / "config.yaml"
IN_CI = os.environ.get("CI") == "true"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
         "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def skip_or_fail(reason):
    """Skip outside CI; in CI (CI=true) a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"CI=true, so this is not skipped: {reason}")
    pytest.skip(reason)


def run(*cmd, timeout=20):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def slurm():
    for tool in ("sinfo", "sbatch", "squeue", "scontrol"):
        if shutil.which(tool) is None:
            skip_or_fail(f"'{tool}' not on PATH; start SLURM with `sudo .ci/slurm.sh start`")
    try:
        ping = run("scontrol", "ping", timeout=15)
    except subprocess.TimeoutExpired:
        skip_or_fail("`scontrol ping` timed out; is slurmctld running? (.ci/slurm.sh status)")
    if ping.returncode != 0 or " is UP" not in ping.stdout:
        skip_or_fail("SLURM controller does not answer `scontrol ping`: "
                     f"{(ping.stdout + ping.stderr).strip().splitlines()[:1]} (.ci/slurm.sh start)")


def squeue_states(job_ids):
    out = run("squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T").stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def test_node_has_two_gpus(slurm):
    out = run("sinfo", "-h", "-N", "-p", "main", "-o", "%N %T %G").stdout.split()
    assert len(out) == 3, f"expected one node in partition main, sinfo says {out}"
    _, state, gres = out
    assert state.rstrip("*") in {"idle", "mixed", "allocated", "completing"}, state
    assert gres.startswith("gpu:2"), gres


def test_two_gpu_jobs_run_side_by_side_on_distinct_gpus(slurm, tmp_path):
    # Each job writes its CUDA_VISIBLE_DEVICES (batch step and an srun step),
    # then waits for the other one's file: that proves they ran at once.
    script = (
        'echo "$CUDA_VISIBLE_DEVICES" > {me}.cvd; '
        'srun -n1 printenv CUDA_VISIBLE_DEVICES > {me}.srun; '
        'for i in $(seq 60); do [ -e {other}.cvd ] && exit 0; sleep 0.5; done; '
        'echo "other job never ran at the same time" >&2; exit 3'
    )
    ids = []
    try:
        for me, other in (("a", "b"), ("b", "a")):
            r = run("sbatch", "--parsable", "--gpus=1", "-n1", "-c1", "--mem=100",
                    "-t", "2", "-J", f"slurm-infra-{me}", f"--chdir={tmp_path}",
                    f"--output={tmp_path}/{me}.log",
                    f"--wrap={script.format(me=me, other=other)}")
            assert r.returncode == 0, f"sbatch failed: {r.stderr}"
            ids.append(r.stdout.strip().split(";")[0])

        deadline = time.monotonic() + 50
        while True:
            states = squeue_states(ids)
            if len(states) == 2 and set(states.values()) <= FINAL:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"jobs not finished after 50 s: {states}\n"
                            + run("squeue", "-t", "all").stdout)
            time.sleep(0.5)
    finally:
        pending = [i for i, s in squeue_states(ids).items() if s not in FINAL] if ids else []
        if pending:
            run("scancel", *pending)

    logs = {m: (tmp_path / f"{m}.log").read_text() if (tmp_path / f"{m}.log").exists() else ""
            for m in "ab"}
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
    assert resources["slurm_partition"].strip("'\"") == "main"


def test_profile_slurm_keys_are_real_plugin_options():
    try:  # importing it runs `which sacct` etc., hence the broad except
        from snakemake_executor_plugin_slurm import ExecutorSettings
    except Exception as e:
        skip_or_fail(f"cannot import snakemake_executor_plugin_slurm: {e!r}")
    fields = {f.name.replace("_", "-") for f in dataclasses.fields(ExecutorSettings)}
    profile = yaml.safe_load(PROFILE.read_text())
    used = {k[len("slurm-"):] for k in profile if k.startswith("slurm-")}
    assert used <= fields, f"unknown plugin options: {sorted(used - fields)}"
