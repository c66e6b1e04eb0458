"""The tests' end of the jobs' test hook LRSTUDY_TEST_PAUSE (lrstudy.faults.pause_for_tests).

A job started with `Pause(folder).env` in its environment creates the gate file at each point of
the named stage and waits there until the test deletes it. A test that kills, signals or starves a
job therefore acts at a point the job has reached and holds, not at one a poll loop hopes to
catch before the job moves on: the outcome does not depend on the machine's load.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .conftest import JOB_TIMEOUT


class Pause:
    """The gate of one stage (default `checkpoint`: a checkpoint is whole and LATEST names it)."""

    def __init__(self, folder: Path, stage: str = "checkpoint"):
        self.gate = Path(folder) / f"paused-at-{stage}"
        self.env = {"LRSTUDY_TEST_PAUSE": f"{stage}:{self.gate}"}

    def hold(self, proc: subprocess.Popen, reached: Callable[[], bool], log: Path | None = None):
        """Return once the job waits at the stage with `reached()` true, and leave it waiting
        there; the pauses before that one are released."""
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            if self.gate.exists():  # the job waits at the stage
                if reached():
                    return
                self.release()
            tail = log.read_text()[-3000:] if log else ""
            assert proc.poll() is None, (
                f"the job ended (exit {proc.returncode}) before pausing there\n{tail}"
            )
            assert time.monotonic() < deadline, f"the job did not get there in time\n{tail}"
            time.sleep(0.01)

    def release(self) -> None:
        self.gate.unlink(missing_ok=True)

    def wait(self, proc: subprocess.Popen) -> int:
        """Release every pause until `proc` ends; its exit status."""
        deadline = time.monotonic() + JOB_TIMEOUT
        while proc.poll() is None:
            self.release()
            assert time.monotonic() < deadline, "the job did not end in time"
            time.sleep(0.01)
        return proc.returncode
