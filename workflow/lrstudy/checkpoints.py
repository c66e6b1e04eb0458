"""Resumable training state in a run folder (lrstudy.train saves and loads through it)."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import torch

from lrstudy import faults, io
from lrstudy.runtime import barrier


class Checkpoints:
    """Resumable state in the run folder: ckpt-NNNNNNN/ folders, the newest named by LATEST.

    A folder is complete before LATEST points at it (written with an atomic rename), so a kill at
    any moment leaves the previous checkpoint usable; a save that fails (a full disk) removes its
    folder. state.pt holds only what torch's safe loader accepts (weights_only=True) and the
    SHA-256 of the other files: a checkpoint that does not load or does not match is refused.
    """

    FILES = ("model.pt", "optimizer.pt", "scheduler.pt")

    def __init__(self, out: Path, booster, rank: int):
        self.out, self.booster, self.rank = out, booster, rank
        self.latest = out / "LATEST"

    def save(self, model, optimizer, scheduler, state: dict) -> None:
        folder = self.out / f"ckpt-{state['step']:07d}"
        if self.rank == 0:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        barrier()
        try:
            with faults.writing(folder):
                self._write(folder, model, optimizer, scheduler, state)
        except BaseException:
            if self.rank == 0 and self.folder() != folder:  # never leave a half-written folder
                shutil.rmtree(folder, ignore_errors=True)
            raise
        barrier()

    def _write(self, folder: Path, model, optimizer, scheduler, state: dict) -> None:
        self.booster.save_model(model, str(folder / "model.pt"), shard=False)
        self.booster.save_optimizer(optimizer, str(folder / "optimizer.pt"), shard=False)
        self.booster.save_lr_scheduler(scheduler, str(folder / "scheduler.pt"))
        if self.rank == 0:
            rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
            sums = {name: io.file_hash(folder / name) for name in self.FILES}
            with io.atomic_path(folder / "state.pt") as tmp:
                torch.save({**state, "rng": rng, "sha256": sums}, tmp)
            old = self.folder()
            io.write_text(self.latest, folder.name)
            if old and old != folder:
                shutil.rmtree(old, ignore_errors=True)
            faults.pause_for_tests("checkpoint")  # tests only: LATEST names a whole checkpoint

    def folder(self) -> Path | None:
        if not self.latest.is_file():
            return None
        folder = self.out / self.latest.read_text().strip()
        return folder if (folder / "state.pt").is_file() else None

    def refuse(self, path: Path, why: str) -> faults.Corrupted:
        return faults.Corrupted(
            path,
            f"{why}; nothing was trained on it",
            f"Delete {path.parent} and {self.latest} to train this run from its start (or restore "
            "the file), then rerun.",
        )

    def read_state(self, folder: Path) -> dict:
        try:  # the safe loader: tensors and plain Python values only, no code runs
            return torch.load(folder / "state.pt", weights_only=True)
        except Exception as error:  # truncated, or holding what the safe loader refuses
            reason = str(error).strip().splitlines()[0][:300]
            why = f"the checkpoint does not load ({reason})"
            raise self.refuse(folder / "state.pt", why) from error

    def verify(self, folder: Path, sums: dict) -> None:
        """Each file is the one the checkpoint wrote (its SHA-256) and holds only what the safe
        loader accepts (ColossalAI's Booster then loads it with torch's full unpickler)."""
        for name in self.FILES:
            path = folder / name
            if not path.is_file() or io.file_hash(path) != sums.get(name):
                raise self.refuse(path, "missing, or not the file this checkpoint wrote")
            try:
                torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:
                reason = str(error).strip().splitlines()[0][:300]
                raise self.refuse(path, f"it does not load ({reason})") from error

    def load(self, model, optimizer, scheduler, expected_hash: str) -> dict | None:
        folder = self.folder()
        if folder is None:
            return None
        state = self.read_state(folder)
        if state.get("spec_hash") != expected_hash:  # the config or the data changed: start afresh
            print(
                f"ignoring checkpoint {folder}: it belongs to another configuration or other data",
                file=sys.stderr,
            )
            return None
        self.verify(folder, state.get("sha256") or {})
        self.booster.load_model(model, str(folder / "model.pt"))
        self.booster.load_optimizer(optimizer, str(folder / "optimizer.pt"))
        self.booster.load_lr_scheduler(scheduler, str(folder / "scheduler.pt"))
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        print(
            f"resuming from checkpoint {folder} (step {state['step']}, epoch {state['epoch']})",
            file=sys.stderr,
        )
        return state

    def clear(self) -> None:
        if self.rank == 0:
            # LATEST first: a kill half-way must not leave it naming a half-deleted folder
            self.latest.unlink(missing_ok=True)
            for folder in self.out.glob("ckpt-*"):
                shutil.rmtree(folder, ignore_errors=True)
