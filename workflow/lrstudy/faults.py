"""Faults a cluster throws, handled where they strike: a stop signal, a full disk, a bad file.

- **Stop signals.** SLURM sends SIGTERM before it kills a job (`scancel`, preemption, the wall-time
  limit) and, when the profile asks for it (`--signal=USR1@<seconds>`), an early SIGUSR1. A
  training job catches both (`STOP.install()`); its loop asks `STOP.requested()` at every step
  boundary and, when set, checkpoints there (mid-epoch included) and exits with 128 + the signal's
  number, so that Snakemake's retry (or SLURM's requeue) resumes at that step.
- **A full disk.** `writing(path)` turns a write that failed for lack of space into `DiskFull`,
  which names the path and the space left on its filesystem.
- **A file that cannot be trusted** (`Corrupted`): the message names the file and what to do.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# A write that failed while less than this is free on its filesystem failed for lack of space
# (torch.save reports ENOSPC as an opaque RuntimeError).
LOW_SPACE = 64 << 20


class StopRequest:
    """The first stop signal this process caught (None until one arrives)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> None:
        for signum in SIGNALS:
            signal.signal(signum, self._caught)

    def _caught(self, signum, frame) -> None:  # runs between two bytecodes: only set the flag
        self.signum = self.signum or signum

    def requested(self) -> bool:
        """True once a signal arrived (in any rank: the ranks stop at the same step)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            import torch

            flag = torch.tensor([1 if self.signum else 0])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.signum = self.signum or (int(signal.SIGTERM) if flag.item() else None)
        return self.signum is not None

    def exit(self, folder: Path | None, step: int) -> SystemExit:
        """Log the checkpoint and return the SystemExit that ends the job (128 + signal)."""
        name = signal.Signals(self.signum).name
        print(
            f"caught {name}: checkpoint {folder} written at step {step}; exiting with status "
            f"{128 + self.signum} so that the retry resumes there",
            file=sys.stderr,
            flush=True,
        )
        return SystemExit(128 + self.signum)


STOP = StopRequest()


def pause_for_tests(stage: str) -> None:
    """Test hook: LRSTUDY_TEST_PAUSE=<stage>:<file> makes <file> at stage, waits till it's gone."""
    hook = os.environ.get("LRSTUDY_TEST_PAUSE")
    if hook and hook.partition(":")[0] == stage:
        gate = Path(hook.partition(":")[2])
        gate.touch()
        while gate.exists():
            time.sleep(0.01)


class DiskFull(SystemExit):
    """A write failed for lack of space: the path and the free space, and what to do."""

    def __init__(self, path: Path, free: int | None, error: BaseException):
        where = "unknown" if free is None else f"{free:,} bytes"
        said = (str(error).strip().splitlines() or [repr(error)])[0]
        super().__init__(
            f"no space left writing {path} ({said}): {where} free on its filesystem. Nothing "
            "half-written was kept; free some space and rerun (training resumes from its last "
            "checkpoint)."
        )


class Corrupted(SystemExit):
    """A file that cannot be read or trusted: its name, why, and what to do."""

    def __init__(self, path: Path, why: str, todo: str):
        super().__init__(f"{path}: {why}. {todo}")


def free_bytes(path: Path) -> int | None:
    for folder in (Path(path), *Path(path).parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(folder).free
    return None


def out_of_space(error: BaseException, path: Path) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    free = free_bytes(path)
    return free is not None and free < LOW_SPACE


@contextlib.contextmanager
def writing(path: Path):
    """Raise DiskFull (naming `path`) when what runs inside fails for lack of space."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        if not out_of_space(error, Path(path)):
            raise
        raise DiskFull(Path(path), free_bytes(Path(path)), error) from error


# ------------------------------------------------------------------ run folders, read with checks
RERUN = (
    "Delete the run folder {folder} and rerun Snakemake (with --rerun-incomplete): it retrains it."
)
# the numeric columns, and whether one may be empty (NaN as pandas writes it; momentum is empty
# for optimizers without one)
NUMBERS = {
    "steps.csv": {
        "step": False,
        "epoch": False,
        "lr": True,
        "momentum": True,
        "train_loss": True,
        "smoothed_loss": True,
    },
    "evals.csv": {"step": False, "epoch": False, "loss": True, "accuracy": True},
}


def read_record(path: Path) -> dict:
    """A run's run.json, or Corrupted naming it: missing (the job never finished) or unparsable."""
    path = Path(path)
    todo = RERUN.format(folder=path.parent)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise Corrupted(path, "missing: this run folder is incomplete", todo) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise Corrupted(path, f"does not parse as JSON ({error})", todo) from None


def read_table(path: Path):
    """A run's steps.csv or evals.csv as a DataFrame, after checking every row: its field count
    and its numbers (pandas would fill a truncated row with NaN); Corrupted naming the file and
    the row otherwise."""
    import pandas as pd

    path = Path(path)
    todo = RERUN.format(folder=path.parent)
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise Corrupted(path, f"cannot be read ({error})", todo) from None
    header = rows[0] if rows else []
    if "step" not in header:
        raise Corrupted(path, f"its header {header} has no `step`", todo)
    numbers = {name: empty for name, empty in NUMBERS.get(path.name, {}).items() if name in header}
    for line, row in enumerate(rows[1:], start=2):
        bad = len(row) != len(header) or any(
            not valid_number(row[header.index(name)], empty) for name, empty in numbers.items()
        )
        if bad:
            raise Corrupted(path, f"line {line} does not parse: {','.join(row)!r}", todo)
    return pd.read_csv(path)


def valid_number(text: str, empty_allowed: bool) -> bool:
    if text == "":
        return empty_allowed
    try:
        float(text)
    except ValueError:
        return False
    return True
