"""Atomic file output and run provenance (versions, device).

Every file the workflow writes goes through a temporary file in the same folder and an
os.replace, so a killed job never leaves a half-written file that Snakemake would take as done.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import platform
import socket
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from lrstudy.faults import writing


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success it replaces `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with writing(path):  # a full disk: DiskFull names the path and the free space
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            yield Path(tmp)
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError, TypeError):
            os.unlink(tmp)


def file_hash(path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, data, allow_nan: bool = True) -> None:
    """`data` as indented JSON (objects JSON lacks as their str()); with allow_nan=False a NaN or
    infinity raises ValueError instead of writing JSON that strict parsers reject."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=allow_nan)
    write_text(path, text + "\n")


def write_csv(path, fieldnames: list[str], rows: list[dict]) -> None:
    """CSV with floats written by repr(): exact round trip, the same bytes for the same numbers."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


VERSIONED = ("torch", "colossalai", "torchvision", "numpy", "snakemake", "tensorboard")


def versions() -> dict[str, str | None]:
    found = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def host() -> dict[str, str | None]:
    keys = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_JOB_NODELIST")
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        **{k.lower(): os.environ.get(k) for k in keys},
    }
