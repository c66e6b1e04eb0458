"""A seed that finished inside a multi-seed job survives a kill of that job.

A training job trains several run folders in turn (a run's seeds; a family's grid points or its
confirmation seeds). When such a job is killed, Snakemake deletes every output of the job before
it reruns it (`--rerun-incomplete`, or a retry), the finished seeds' files too. So each finished
seed also leaves a copy of its files in `<run folder>/.finished/`, which is no declared output:
the rerun restores them, byte for byte, instead of training that seed again, when the copy was
made for the same spec, range-test bounds and data (the spec hash in its run.json); the seed that
was running resumes from its checkpoint. The job clears the copies once all its seeds are done.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from lrstudy import io

FILES = ("steps.csv", "evals.csv", "run.json")  # run.json last: it marks the folder complete
FOLDER = ".finished"


def keep(out: Path) -> None:
    """Copy a finished seed's files aside (run.json last, so a half-made copy is never used)."""
    copy = Path(out) / FOLDER
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    for name in FILES:
        copy_file(Path(out) / name, copy / name)


def restore(out: Path, digest: str, rank: int = 0) -> dict | None:
    """The finished seed's record, its files put back (by rank 0), when its copy was made for
    `digest`; None otherwise (a stale copy is replaced when the seed finishes). Every rank reads
    the same answer."""
    copy = Path(out) / FOLDER
    try:
        record = json.loads((copy / "run.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if record.get("spec_hash") != digest:
        if rank == 0:
            print(f"ignoring {copy}: it was made for another spec or other data", file=sys.stderr)
        return None
    if rank != 0:
        return record
    for name in FILES:
        copy_file(copy / name, Path(out) / name)
    print(
        f"restored {out} from {copy}: finished in an earlier attempt of this job", file=sys.stderr
    )
    return record


def copy_file(source: Path, target: Path) -> None:
    with io.atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def clear(out: Path) -> None:
    shutil.rmtree(Path(out) / FOLDER, ignore_errors=True)
