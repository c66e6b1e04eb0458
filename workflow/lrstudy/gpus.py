"""Give each local job its own GPUs.

Snakemake counts ``--resources gpu=N`` but never tells a job *which* GPU it
got (snakemake issue #281), so without help every job lands on GPU 0.
``assign`` fixes that: outside SLURM it leases GPU ids with one ``flock`` per
id in a lock directory; under SLURM it trusts the CUDA_VISIBLE_DEVICES that
the scheduler set for the job.  The caller then exports
``cuda_visible(ids)`` for itself and its ranks.

flock locks belong to the open file, so the kernel drops them when the holder
exits, however it dies (SIGKILL included): a stale lock file is never a held
lock.  The lock directory must be on a local file system shared by every job
of the machine (e.g. under /tmp), not NFS.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping, Sequence


class GpuLeaseTimeout(TimeoutError):
    """Not enough free GPU ids before the timeout."""


def visible_gpu_ids(env: Mapping[str, str] | None = None) -> list[str]:
    """Ids visible to this process: CUDA_VISIBLE_DEVICES when set, else torch's count.

    Ids stay strings (they may be UUIDs such as ``GPU-8f3c...``).  As CUDA
    does, the list ends at the first negative id ("-1" hides all GPUs).
    """
    env = os.environ if env is None else env
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is not None:
        ids = []
        for part in raw.split(","):
            part = part.strip()
            if not part or part.startswith("-"):
                break
            ids.append(part)
        return ids
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # no torch, or a torch without CUDA support
        count = 0
    return [str(i) for i in range(count)]


def cuda_visible(ids: Sequence[str]) -> dict[str, str]:
    """The environment update that shows exactly ``ids`` to a process and its children."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(ids)}


def lock_path(lock_dir: str | os.PathLike, gpu_id: str) -> str:
    """``lock_dir/gpu-<id>.lock``; characters unsafe in a file name become ``_``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", gpu_id)
    return os.path.join(os.fspath(lock_dir), f"gpu-{safe}.lock")


def _try_lock(path: str) -> int | None:
    """Open and flock ``path`` without blocking; the fd on success, None if held elsewhere."""
    # O_CLOEXEC: ranks started with exec (torchrun) do not inherit the fd.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    # Who holds it, for humans only: the lock itself is what counts.
    os.ftruncate(fd, 0)
    os.write(fd, f"pid={os.getpid()} host={socket.gethostname()}\n".encode())
    return fd


def _unlock(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # clear the holder note while still holding the lock
    finally:
        os.close(fd)  # closing the last fd of the open file releases the flock


def _holders(lock_dir: str, ids: Sequence[str]) -> str:
    notes = []
    for gpu_id in ids:
        try:
            with open(lock_path(lock_dir, gpu_id)) as fh:
                note = fh.read().strip()
        except OSError:
            note = ""
        notes.append(f"{gpu_id}: {note or '?'}")
    return "; ".join(notes)


@contextlib.contextmanager
def lease(
    count: int,
    lock_dir: str | os.PathLike,
    ids: Sequence[str] | None = None,
    timeout: float | None = None,
    poll: float = 0.2,
) -> Iterator[list[str]]:
    """Hold ``count`` of ``ids`` (default: visible_gpu_ids()) exclusively; yield them.

    Waits, retrying every ``poll`` seconds, until ``count`` ids are free at
    once; ``timeout`` None waits forever, otherwise GpuLeaseTimeout.  Never
    holds a partial set while waiting.  Released on exit, also on exceptions.
    """
    if count < 0:
        raise ValueError(f"GPU count must be >= 0, got {count}")
    if count == 0:
        yield []
        return
    ids = list(dict.fromkeys(visible_gpu_ids() if ids is None else [str(i) for i in ids]))
    if count > len(ids):
        raise ValueError(f"asked for {count} GPU(s) but only {len(ids)} visible: {ids}")
    lock_dir = os.fspath(lock_dir)
    os.makedirs(lock_dir, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        held: dict[str, int] = {}
        try:
            for gpu_id in ids:
                fd = _try_lock(lock_path(lock_dir, gpu_id))
                if fd is not None:
                    held[gpu_id] = fd
                    if len(held) == count:
                        break
        except BaseException:
            for fd in held.values():
                _unlock(fd)
            raise
        if len(held) == count:
            break
        for fd in held.values():
            _unlock(fd)
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise GpuLeaseTimeout(
                f"could not lease {count} of GPU ids {ids} within {timeout}s; "
                f"lock dir {lock_dir} (holders: {_holders(lock_dir, ids)})"
            )
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - now)))
    try:
        yield list(held)
    finally:
        for fd in held.values():
            _unlock(fd)


@contextlib.contextmanager
def assign(
    count: int,
    lock_dir: str | os.PathLike,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    poll: float = 0.2,
) -> Iterator[list[str]]:
    """GPU ids for one training job; what the entry point calls.

    Under SLURM (SLURM_JOB_ID set) the job already owns the GPUs in its
    CUDA_VISIBLE_DEVICES: no locking, yields the first ``count`` of them
    (ValueError if SLURM gave fewer).  Otherwise leases ``count`` of
    visible_gpu_ids(env) in ``lock_dir``.
    """
    env = os.environ if env is None else env
    if count == 0:  # CPU-only job: touch nothing, do not even import torch
        yield []
        return
    if "SLURM_JOB_ID" in env:
        ids = visible_gpu_ids({"CUDA_VISIBLE_DEVICES": env.get("CUDA_VISIBLE_DEVICES", "")})
        if count < 0 or count > len(ids):
            raise ValueError(
                f"asked for {count} GPU(s) but SLURM job {env['SLURM_JOB_ID']} "
                f"has {len(ids)}: CUDA_VISIBLE_DEVICES={ids}"
            )
        yield ids[:count]
        return
    with lease(count, lock_dir, ids=visible_gpu_ids(env), timeout=timeout, poll=poll) as ids:
        yield ids
