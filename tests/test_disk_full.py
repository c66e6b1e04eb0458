"""A full disk while a training job writes: the job stops naming the path and the free space,
leaves nothing half-written, and once space is freed its rerun ends with the bytes of an unbroken
run.

The run folder lives on a small tmpfs that the test mounts (root only: CI runs as root, where the
test must run; elsewhere it skips, saying why). The disk is filled while the job waits just after
a checkpoint (tests/pause.py: the job itself stops there, whatever the machine's load), so the next
write is the one that fails: the next checkpoint, or, after the last checkpoint, steps.csv.
"""

import os
import shutil
import subprocess

import pytest

from .conftest import long_config, spec_of
from .pause import Pause
from .slurm_ci import IN_CI
from .test_resume import (
    STEPS_PER_EPOCH,
    assert_no_checkpoints,
    assert_same_bytes,
    checkpoint_step,
)

LEFT = 8192  # bytes left free: less than a checkpoint (~0.5 MB) and than steps.csv (~30 kB)


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs mounted at tmp_path/disk, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    why = None
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root (CI runs as root)"
    else:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
        )
        why = done.returncode and f"mount -t tmpfs was not permitted: {done.stderr.strip()}"
    if why:
        (pytest.fail if IN_CI else pytest.skip)(f"{why}; CI=true requires this test to run")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount, leave: int = LEFT):
    """A filler file that leaves `leave` bytes free on the tmpfs."""
    free = shutil.disk_usage(mount).free
    with open(mount / "filler", "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, free - leave)
    return mount / "filler"


@pytest.mark.slow
@pytest.mark.parametrize("when", ["checkpoint", "csv"])
def test_a_full_disk_stops_the_job_and_the_rerun_completes(trainer, small_disk, tmp_path, when):
    spec = spec_of(long_config(), "onecycle", 0)
    last = (spec.epochs - 1) * STEPS_PER_EPOCH  # the last checkpoint: then only the CSVs
    at_least = STEPS_PER_EPOCH if when == "checkpoint" else last
    out, pause = small_disk / "run", Pause(tmp_path)  # the gate off the small disk
    job = trainer.start(spec, out, env=pause.env)
    try:  # the disk fills while the job waits just after that checkpoint
        pause.hold(job.proc, lambda: (checkpoint_step(out) or 0) >= at_least, job.log)
        step = checkpoint_step(out)
        filler = fill(small_disk)
        assert pause.wait(job.proc) == 1, job.stderr[-3000:]
    finally:
        job.proc.kill()
    assert step == at_least
    failed = out / (f"ckpt-{step + STEPS_PER_EPOCH:07d}" if when == "checkpoint" else "steps.csv")
    assert "no space left" in job.stderr, job.stderr[-3000:]
    message = job.stderr[job.stderr.find("no space left") :].splitlines()[0]  # after tqdm's \r
    assert message.startswith(f"no space left writing {failed} "), message
    assert " bytes free on its filesystem" in message, message
    # nothing half-written: the checkpoint LATEST names, whole, and nothing else
    name = f"ckpt-{step:07d}"
    assert sorted(p.name for p in out.iterdir()) == ["LATEST", name]
    assert sorted(p.name for p in (out / name).iterdir()) == [
        "model.pt",
        "optimizer.pt",
        "scheduler.pt",
        "state.pt",
    ]

    filler.unlink()  # space freed: the rerun resumes there and ends as an unbroken run
    resumed = trainer.run(spec, out)
    assert f"resuming from checkpoint {out / name}" in resumed.stderr
    assert_same_bytes(out, trainer.reference(spec))
    assert_no_checkpoints(out)
