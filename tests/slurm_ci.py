"""The SLURM tests run only against the single-node cluster that `.ci/slurm.sh start` set up.

They recognise it by what that script configured: the ClusterName `lrstudy-ci` and a controller on
this machine (SlurmctldHost = this host). Any other cluster that answers `sinfo` (a user's) is
never sent a job: the tests skip, saying why. With CI=true, where .ci/run.sh starts the cluster
first, a missing CI cluster is a failure instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess

import pytest

CLUSTER = "lrstudy-ci"  # ClusterName written by .ci/slurm.sh
IN_CI = os.environ.get("CI") == "true"
START = "start it with `sudo .ci/slurm.sh start`"
# The profile's first status check comes 10 s after a submission (a shared cluster's pace); the
# tests' jobs take seconds, so they ask sooner (a command-line option overrides the profile's).
QUICK_STATUS = ("--slurm-init-seconds-before-status-checks", "2")


def _show_config() -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=15)
    if out.returncode != 0:
        raise RuntimeError((out.stderr or out.stdout).strip().splitlines()[:1])
    pairs = (re.match(r"^(\S+)\s*=\s*(.*)$", line) for line in out.stdout.splitlines())
    return {m.group(1): m.group(2).strip() for m in pairs if m}


def why_not_ci_cluster() -> str | None:
    """None when the SLURM these tools talk to is the CI cluster and its controller is up, else
    why not."""
    for tool in ("sinfo", "sbatch", "squeue", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            return f"SLURM is not installed ('{tool}' not on PATH); {START}"
    try:
        config = _show_config()
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return f"no SLURM controller answers `scontrol show config` ({error}); {START}"
    name = config.get("ClusterName")
    if name != CLUSTER:
        return (
            f"the SLURM that answers here is cluster {name!r}, not the CI cluster {CLUSTER!r} "
            "of .ci/slurm.sh: these tests never submit jobs to another cluster"
        )
    host = config.get("SlurmctldHost[0]", config.get("SlurmctldHost", ""))
    if not host.startswith(socket.gethostname().split(".")[0]):
        return (
            f"cluster {CLUSTER!r} answers, but its controller {host!r} is not on this machine; "
            f"{START}"
        )
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        said = (ping.stdout or ping.stderr).strip()
        return f"the controller of {CLUSTER!r} is not UP (`scontrol ping`: {said}); {START}"
    return None


def require_ci_cluster() -> None:
    """Skip (fail with CI=true) unless the CI cluster is up."""
    reason = why_not_ci_cluster()
    if reason and IN_CI:
        pytest.fail(f"CI=true, so the SLURM tests must run: {reason}")
    if reason:
        pytest.skip(reason)
