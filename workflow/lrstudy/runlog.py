"""A training run's log: steps.csv and evals.csv rows, loss smoothing, divergence, TensorBoard."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lrstudy.rangetest import Smoother
from lrstudy.runtime import mean_over_ranks
from lrstudy.spec import SMOOTH_BETA, Spec

STEP_FIELDS = ["step", "epoch", "lr", "momentum", "train_loss", "smoothed_loss"]
EVAL_FIELDS = ["step", "epoch", "split", "loss", "accuracy"]


class RunLog:
    """steps.csv and evals.csv rows, the loss smoothing, divergence, and TensorBoard.

    Losses stay on the device until `flush` (one host sync per flush). Its rows and smoother
    are checkpointed with the model (`state`), so a resumed run continues the same log.
    """

    def __init__(self, spec: Spec, out: Path, state: dict | None, rank: int):
        test = spec.range_test
        self.stop_factor = test.stop_factor if test else None
        state = state or {
            "steps": [],
            "evals": [],
            "smoother": Smoother(test.smooth_beta if test else SMOOTH_BETA),
            "best": math.inf,
        }
        self.steps, self.evals = state["steps"], state["evals"]
        self.smoother, self.best = state["smoother"], state["best"]
        if isinstance(self.smoother, dict):  # checkpointed as plain values (the safe loader's)
            self.smoother = Smoother(state["smoother"]["beta"])
            self.smoother.avg, self.smoother.n = state["smoother"]["avg"], state["smoother"]["n"]
        self.pending: list[tuple[int, int, float, float, torch.Tensor]] = []
        self.writer = tensorboard_writer(spec, out, len(self.steps)) if rank == 0 else None

    def state(self) -> dict:
        return {
            "steps": self.steps,
            "evals": self.evals,
            "smoother": vars(self.smoother).copy(),
            "best": self.best,
        }

    def step(
        self, step: int, epoch: int, lr: float, momentum: float | None, loss: torch.Tensor
    ) -> None:
        self.pending.append((step, epoch, lr, momentum, loss.detach()))

    def flush(self) -> bool:
        """Move pending losses to the host; False once the run diverged (a non-finite loss, or
        for a range test a smoothed loss past stop_factor x its best)."""
        if not self.pending:
            return True
        losses = mean_over_ranks(torch.stack([p[4] for p in self.pending]).float()).tolist()
        pending, self.pending = self.pending, []
        for (step, epoch, lr, momentum, _), loss in zip(pending, losses):
            smoothed = self.smoother.update(loss)
            self.steps.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "lr": lr,
                    "momentum": momentum,
                    "train_loss": loss,
                    "smoothed_loss": smoothed,
                }
            )
            self.scalars(step, lr=lr, momentum=momentum, **{"train/loss": loss})
            if math.isfinite(smoothed):
                self.best = min(self.best, smoothed)
            if not math.isfinite(loss) or (
                self.stop_factor and smoothed > self.stop_factor * self.best
            ):
                return False
        return True

    def evaluation(self, step: int, epoch: int, split: str, loss: float, accuracy: float) -> None:
        self.evals.append(
            {"step": step, "epoch": epoch, "split": split, "loss": loss, "accuracy": accuracy}
        )
        self.scalars(step, **{f"{split}/loss": loss, f"{split}/accuracy": accuracy})

    def scalars(self, step: int, **values) -> None:
        if self.writer:
            for tag, value in values.items():
                if value is not None:
                    self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def tensorboard_writer(spec: Spec, out: Path, step: int):
    if not spec.tensorboard:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=step or None)
