r"""One training job: LeNet5 (or ResNet-18) under one LR schedule, through ColossalAI's Booster.

    python -m lrstudy.train --spec JSON --data results/data/mnist10k.pt \
        --out results/runs/step/seed0

`--spec` is one run's spec (lrstudy.config.run_spec) or a JSON list of them, one `--out` folder
each: a job trains its seeds one after another in one process, so the ~7 s of importing torch and
ColossalAI is paid once per scheduler configuration, not once per seed.

A single-rank job runs in this process with `Booster()` and `OptimizerWrapper` (no launcher).
A multi-rank job (`gpus`/`procs` > 1) leases its GPUs, then re-runs this module under torchrun;
each rank joins through `colossalai.launch_from_torch` and trains with TorchDDPPlugin (or the
plugin the config names). Rank 0 writes steps.csv, evals.csv and run.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# bitsandbytes (imported by ColossalAI's booster) imports torch._inductor, which would start a pool
# of compile workers that no job here uses: ~3 CPU-seconds a job.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import torch  # noqa: E402

from lrstudy import (  # noqa: E402
    factories,
    faults,
    finished,
    gpus,
    inputs,
    io,
    losses,
    precision,
    schedules,
)
from lrstudy.config import spec_hash  # noqa: E402
from lrstudy.families import SELECTED  # noqa: E402
from lrstudy.rangetest import Smoother  # noqa: E402

STEP_FIELDS = ["step", "epoch", "lr", "momentum", "train_loss", "smoothed_loss"]
EVAL_FIELDS = ["step", "epoch", "split", "loss", "accuracy"]
# A scheduled classification run whose final valid accuracy is at most this many times chance
# never learned (a regression run: its final valid loss is no better than the mean's).
CHANCE_FACTOR = 1.5


# ------------------------------------------------------------------------------ the runtime
@dataclass
class Runtime:
    """Where this process trains: its device, its rank and the number of ranks."""

    device: str
    rank: int
    world: int

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


def resolve_device(requested: str) -> str:
    """`auto` is decided on the node that runs the job, never on the machine that built the DAG."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def start_runtime(spec: dict) -> Runtime:
    """Threads, device and (for several ranks) the process group; deterministic algorithms."""
    torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    world = spec["gpus"] if device == "cuda" else spec["procs"]
    rank = 0
    if world > 1:
        if not torch.distributed.is_initialized():
            import colossalai

            backend = "nccl" if device == "cuda" else "gloo"
            colossalai.launch_from_torch(backend=backend, seed=spec["seed"], verbose=False)
        rank = torch.distributed.get_rank()
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        device = f"cuda:{torch.cuda.current_device()}"
    torch.use_deterministic_algorithms(True, warn_only=True)
    precision.check(spec["precision"], device)  # `auto` may have resolved to the CPU: no fp16 there
    return Runtime(device, rank, world)


def make_plugin(name: str, world: int, precision: str = "fp32"):
    """The cheapest correct plugin: none for one rank, DDP for several (ZeRO/Gemini on request)."""
    if name == "auto":
        name = "none" if world == 1 else "torch_ddp"
    if name == "none":
        return None
    from colossalai.booster import plugin

    return {
        "torch_ddp": lambda: plugin.TorchDDPPlugin(),
        "low_level_zero": lambda: plugin.LowLevelZeroPlugin(stage=1, precision=precision),
        "gemini": lambda: plugin.GeminiPlugin(precision=precision),
    }[name]()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(values)
        values /= torch.distributed.get_world_size()
    return values


# -------------------------------------------------------------------------- the run's length
@dataclass
class Length:
    steps_per_epoch: int
    epochs: int
    total_steps: int


def run_length(spec: dict, train_size: int) -> Length:
    """Full batches only (the last partial one is dropped), so every rank gets batch_size / world.
    A range test may set its own step count; otherwise a run lasts `epochs` epochs."""
    steps_per_epoch = train_size // spec["batch_size"]
    if steps_per_epoch == 0:
        raise SystemExit(
            f"batch_size {spec['batch_size']} exceeds the {train_size} training samples"
        )
    test = spec.get("range_test")
    total = test["steps"] if test and test.get("steps") else steps_per_epoch * spec["epochs"]
    return Length(steps_per_epoch, math.ceil(total / steps_per_epoch), total)


# ---------------------------------------------------------------------------------- the input
def shuffled_batches(x, y, spec: dict, epoch: int, runtime: Runtime):
    """One epoch of (inputs, labels) batches: each rank's share of every global batch.

    The order depends only on (seed, epoch), so a resumed run sees the same batches. This is the
    one way input reaches the loop: another input path (the benchmark's DataLoader) is another
    function of the same signature, passed to `train(batches=...)`.
    """
    batch, local = spec["batch_size"], spec["batch_size"] // runtime.world
    generator = torch.Generator().manual_seed(spec["seed"] * 100003 + epoch)
    order = torch.randperm(len(x), generator=generator).to(x.device)
    for start in range(0, len(x) - batch + 1, batch):
        index = order[start : start + batch][runtime.rank * local : (runtime.rank + 1) * local]
        yield x[index], y[index]


# ------------------------------------------------------------------------------- components
def build_components(spec: dict, dataset: dict, length: Length, bounds: dict | None):
    """Model, optimizer, scheduler and what run.json records of them (`auto` values resolved)."""
    meta = dataset["meta"]
    model = factories.build_model(spec["model"], data_facts(meta))
    opt_kwargs = spec["optimizer"].get("kwargs", {})
    test = spec.get("range_test")
    sched_kwargs = {} if test else spec["scheduler"]["kwargs"]
    auto = tuning = None
    if bounds is not None:
        opt_kwargs, sched_kwargs, auto = schedules.resolve_auto(spec, bounds)
    if spec.get("tuning"):  # a family's run: its LR scale times the grid point's multiplier
        opt_kwargs, sched_kwargs, tuning = schedules.apply_multiplier(
            spec["tuning"], opt_kwargs, sched_kwargs
        )
    optimizer = schedules.build_optimizer(model.parameters(), spec["optimizer"]["name"], opt_kwargs)
    if test:
        scheduler = schedules.build_range_test(optimizer, test, length.total_steps)
        record = {"class": "LambdaLR", "range_test": test}
    else:
        name = spec["scheduler"]["class"]
        scheduler = schedules.build_scheduler(
            optimizer, name, sched_kwargs, length.steps_per_epoch, length.epochs
        )
        record = {
            "class": name,
            "kwargs": schedules.fill_kwargs(
                name, sched_kwargs, length.steps_per_epoch, length.epochs
            ),
            "config_kwargs": spec["scheduler"]["kwargs"],
        }
    optimizer_record = {"name": spec["optimizer"]["name"], "kwargs": opt_kwargs}
    return (
        model,
        optimizer,
        scheduler,
        {"scheduler": record, "optimizer": optimizer_record, "auto": auto, "tuning": tuning},
    )


# ---------------------------------------------------------------------------- the run's log
class RunLog:
    """steps.csv and evals.csv rows, the loss smoothing, divergence, and TensorBoard.

    Losses stay on the device until `flush` (one host sync per flush). Its rows and smoother
    are checkpointed with the model (`state`), so a resumed run continues the same log.
    """

    def __init__(self, spec: dict, out: Path, state: dict | None, rank: int):
        test = spec.get("range_test") or {}
        self.stop_factor = test.get("stop_factor")
        state = state or {
            "steps": [],
            "evals": [],
            "smoother": Smoother(test.get("smooth_beta", 0.98)),
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
        losses = _mean_over_ranks(torch.stack([p[4] for p in self.pending]).float()).tolist()
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


def tensorboard_writer(spec: dict, out: Path, step: int):
    if not spec.get("tensorboard"):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=step or None)


def data_facts(meta: dict) -> dict:
    """The task, classes and shapes of the prepared data (the built-in datasets: 10 classes)."""
    return {
        "task": meta.get("task", "classification"),
        "num_classes": meta.get("num_classes"),
        "input_shape": meta.get("input_shape", meta["image_shape"]),
        "target_shape": meta.get("target_shape", []),
    }


def loss_name(spec: dict, meta: dict) -> str:
    return losses.resolve(spec.get("loss"), data_facts(meta)["task"])


@torch.inference_mode()
def evaluate(model, batches, loss_sum_fn, classification: bool = True):
    """(mean loss, accuracy) over `batches`; the accuracy is None for regression."""
    model.eval()
    loss_sum = correct = count = None
    for x, y in batches:
        output = model(x)
        batch_loss = loss_sum_fn(output, y).detach()
        loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
        if classification:
            hits = (output.argmax(1) == y).sum()
            correct = hits if correct is None else correct + hits
        count = len(y) + (count or 0)
    model.train()
    accuracy = correct.item() / count if classification else None
    return loss_sum.item() / count, accuracy


# ------------------------------------------------------------------------------ checkpoints
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
        _barrier()
        try:
            with faults.writing(folder):
                self._write(folder, model, optimizer, scheduler, state)
        except BaseException:
            if self.rank == 0 and self.folder() != folder:  # never leave a half-written folder
                shutil.rmtree(folder, ignore_errors=True)
            raise
        _barrier()

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


# --------------------------------------------------------------------------------- training
def train(
    spec: dict,
    data_path: Path,
    out: Path,
    bounds: dict | None = None,
    gpu_ids=(),
    batches=shuffled_batches,
) -> dict:
    """Train one run (one seed) into `out`; returns what run.json records."""
    started = time.time()
    runtime = start_runtime(spec)
    seed_everything(spec["seed"])
    dataset = inputs.load(data_path, spec, runtime.device)
    # what a checkpoint or a finished seed's copy must have been made for (config, bounds, data)
    digest = spec_hash({**spec, "bounds": bounds, "data": dataset["fingerprint"]})
    restored = finished.restore(out, digest, runtime.rank)
    if restored is not None:
        return restored
    x_train, y_train = dataset["train"]
    if dataset.get("loader") and batches is shuffled_batches:
        batches = inputs.loader_batches  # the same batches, read through a DataLoader
    facts, loss_kind = data_facts(dataset["meta"]), loss_name(spec, dataset["meta"])
    loss_sum = losses.batch_sum(loss_kind)
    classification = facts["task"] == "classification"
    length = run_length(spec, len(x_train))
    model, optimizer, scheduler, record = build_components(spec, dataset, length, bounds)
    model = model.to(runtime.device)

    # ColossalAI's Booster wraps model, optimizer and scheduler (and, for several ranks, the plugin)
    from colossalai.booster import Booster
    from colossalai.interface import OptimizerWrapper

    plugin = make_plugin(spec["plugin"], runtime.world, spec["precision"])
    mixed_precision = precision.booster_mixed_precision(spec["precision"], runtime.device, plugin)
    booster = Booster(
        plugin=plugin, device=runtime.device.split(":")[0], mixed_precision=mixed_precision
    )
    if plugin is None and mixed_precision is None:
        optimizer = OptimizerWrapper(optimizer)  # gives booster.backward() its optimizer.backward()
    model, optimizer, criterion, _, scheduler = booster.boost(
        model, optimizer, losses.criterion(loss_kind), lr_scheduler=scheduler
    )
    raw_model = model.unwrap() if hasattr(model, "unwrap") else model

    # resume from the run folder's last checkpoint when it belongs to this spec and these data
    checkpoints = Checkpoints(out, booster, runtime.rank)
    state = checkpoints.load(model, optimizer, scheduler, digest)
    log = RunLog(spec, out, state, runtime.rank)
    step, first_epoch = (state["step"], state["epoch"]) if state else (0, 0)

    def evaluate_splits(
        step: int, epoch: int, splits=spec["eval_splits"], size: int | None = None
    ) -> None:
        # a schedule-free optimizer is evaluated at its averaged weights (every rank switches)
        with schedules.evaluation_weights(optimizer):
            if runtime.rank == 0:
                for split in splits:
                    chunks = inputs.eval_batches(
                        dataset, "valid" if split == "range_valid" else split, size, runtime.device
                    )
                    log.evaluation(
                        step, epoch, split, *evaluate(raw_model, chunks, loss_sum, classification)
                    )

    test = spec.get("range_test") or {}
    valid_every = test.get("valid_every")
    if step == 0:
        evaluate_splits(0, 0)

    from tqdm import tqdm

    progress = tqdm(
        total=length.total_steps,
        initial=step,
        desc=f"{spec['run']} seed {spec['seed']}",
        file=sys.stderr,
        mininterval=2,
        disable=runtime.rank != 0,
    )
    status, loop_started = "completed", time.time()
    model.train()
    schedules.training_weights(
        optimizer
    )  # schedule-free optimizers start, and resume, in eval mode

    def save(epoch: int) -> None:
        """A checkpoint at `step`; a resumed run starts `epoch` at batch step - epoch x
        steps_per_epoch. Schedule-free optimizers are checkpointed in eval mode."""
        with schedules.evaluation_weights(optimizer):
            state = {**log.state(), "step": step, "epoch": epoch, "spec_hash": digest}
            checkpoints.save(model, optimizer, scheduler, state)

    for epoch in range(first_epoch, length.epochs):
        done_in_epoch = max(0, step - epoch * length.steps_per_epoch)  # > 0: resumed mid-epoch
        for x, y in itertools.islice(
            batches(x_train, y_train, spec, epoch, runtime), done_in_epoch, None
        ):
            if step >= length.total_steps:
                break
            with precision.autocast(spec["precision"], runtime.device, plugin):
                loss = criterion(model(x), y)
            # the LR and momentum this step trains with, read before the schedule moves them on
            log.step(step, epoch, scheduler.get_last_lr()[0], schedules.momentum(optimizer), loss)
            optimizer.zero_grad(set_to_none=True)
            booster.backward(loss, optimizer)
            optimizer.step()
            scheduler.step()
            step += 1
            progress.update()
            every = spec["eval_every"]  # None: at step 0 and at the end only
            at_eval = (every and step % every == 0) or step == length.total_steps
            at_range_valid = bool(valid_every) and step % valid_every == 0
            if at_eval or at_range_valid:
                if not log.flush():
                    status = "diverged"
                    break
                if at_eval:
                    evaluate_splits(step, epoch)
                if at_range_valid:
                    evaluate_splits(step, epoch, ("range_valid",), test["valid_subset"])
            if faults.STOP.requested():  # SIGTERM/SIGUSR1: checkpoint this step, then exit
                if not log.flush():
                    status = "diverged"
                    break
                save(epoch)
                progress.close()
                raise faults.STOP.exit(checkpoints.folder(), step)
        if status == "diverged" or not log.flush():
            status = "diverged"
            break
        done = epoch + 1
        every = spec["checkpoint_every"]
        if every and done % every == 0 and step < length.total_steps:
            save(done)
    progress.close()
    loop_seconds = time.time() - loop_started
    if status == "diverged" and log.evals[-1]["step"] != step:
        evaluate_splits(step, log.steps[-1]["epoch"])  # where the run stopped
    baseline = mean_baseline(dataset, loss_sum, runtime.device)
    if status == "completed" and not test and collapsed(log.evals, facts["num_classes"], baseline):
        status = "collapsed"

    result = {
        "run": spec["run"],
        "seed": spec["seed"],
        "status": status,
        "steps": len(log.steps),
        "total_steps": length.total_steps,
        "steps_per_epoch": length.steps_per_epoch,
        "epochs": length.epochs,
        "wall_seconds": round(time.time() - started, 3),
        "spec_hash": digest,
        "loop_started_at": loop_started,
        "loop_seconds": round(loop_seconds, 3),
        "device": runtime.device,
        "device_name": torch.cuda.get_device_name() if runtime.cuda else io.host()["processor"],
        "world_size": runtime.world,
        "plugin": type(plugin).__name__ if plugin else "none (Booster + OptimizerWrapper)",
        "precision": precision.describe(spec["precision"], runtime.device, plugin),
        "gpu_ids": list(gpu_ids),
        "threads": torch.get_num_threads(),
        "range_test": spec.get("range_test"),
        "task": facts["task"],
        "loss": loss_kind,
        "baseline_valid_loss": baseline,
        "code": factories.provenance(spec),
        **record,
        "bounds": bounds,
        "spec": spec,
        "versions": io.versions(),
        "host": io.host(),
    }
    if runtime.rank == 0:
        io.write_csv(out / "steps.csv", STEP_FIELDS, log.steps)
        io.write_csv(out / "evals.csv", EVAL_FIELDS, log.evals)
        io.write_json(out / "run.json", result)  # last: it means the run folder is complete
        finished.keep(out)  # until the job's last seed is done (lrstudy.finished)
        log.close()
        if not spec["keep_checkpoints"]:
            checkpoints.clear()
    _barrier()
    return result


def collapsed(evals: list[dict], num_classes: int | None, baseline: float | None = None) -> bool:
    """Classification: the final valid accuracy is at chance (at most CHANCE_FACTOR / number of
    classes). Regression: the final valid loss is no better than `baseline`, the valid loss of
    predicting the training targets' mean."""
    valid = [row for row in evals if row["split"] == "valid"]
    if not valid:
        return False
    if num_classes is None:
        return baseline is not None and valid[-1]["loss"] >= baseline
    return valid[-1]["accuracy"] <= CHANCE_FACTOR / num_classes


def mean_baseline(dataset: dict, loss_sum_fn, device) -> float | None:
    """Regression: the valid loss of always predicting the training targets' mean."""
    mean = dataset["meta"].get("target_mean")
    if mean is None:
        return None
    constant = torch.as_tensor(mean, dtype=torch.float32, device=device)
    total, count = 0.0, 0
    for _, y in inputs.eval_batches(dataset, "valid", None, device):
        total += loss_sum_fn(constant.expand_as(y), y).item()
        count += len(y)
    return total / count


# ------------------------------------------------------------------------------ the command
def load_bounds(path: str | None) -> dict | None:
    if not path:
        return None
    suggestion = json.loads(Path(path).read_text())
    if not suggestion.get("bounds") or suggestion["bounds"].get("max_lr") is None:
        raise SystemExit(
            f"{path}: the range test gave no usable bounds ({suggestion.get('status')}); "
            "set the values by hand"
        )
    return suggestion["bounds"]


def selected(spec: dict, selection: str | None) -> dict:
    """A confirmation run's spec with the multiplier its family's tuning chose."""
    tuning = spec.get("tuning") or {}
    if tuning.get("multiplier") != SELECTED:
        return spec
    if not selection:
        raise SystemExit(f"run {spec['run']} trains the tuning stage's choice: give --selection")
    chosen = json.loads(Path(selection).read_text())
    return {**spec, "tuning": {**tuning, "multiplier": chosen["multiplier"]}}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--spec",
        required=True,
        help="a run's spec as JSON (lrstudy.config.run_spec), or a list of them",
    )
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset file")
    parser.add_argument(
        "--out", required=True, type=Path, nargs="+", help="run folder, one per spec"
    )
    parser.add_argument("--suggestion", help="range-test suggestion JSON that fills `auto` values")
    parser.add_argument(
        "--selection", help="a family's tuning selection (lrstudy.verdict): its chosen multiplier"
    )
    parser.add_argument(
        "--lock-dir", default=".snakemake/gpu-locks", help="where local GPU leases are held"
    )
    args = parser.parse_args(argv)
    specs = json.loads(args.spec)
    args.specs = [
        selected(spec, args.selection) for spec in (specs if isinstance(specs, list) else [specs])
    ]
    if len(args.specs) != len(args.out):
        parser.error(f"{len(args.specs)} specs but {len(args.out)} --out folders")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    bounds = load_bounds(args.suggestion)
    for out in args.out:
        out.mkdir(parents=True, exist_ok=True)
    jobs = list(zip(args.specs, args.out))

    if "LOCAL_RANK" in os.environ:  # a rank started by torchrun below
        ids = [i for i in os.environ.get("LRSTUDY_GPU_IDS", "").split(",") if i]
        faults.STOP.install()
        for spec, out in jobs:
            train(spec, args.data, out, bounds, ids)
        return
    train_jobs(args, jobs, bounds, argv)
    for out in args.out:  # every seed is done: the copies that outlive a kill can go
        finished.clear(out)


def train_jobs(args, jobs, bounds, argv) -> None:
    """Every (spec, folder) in this process, or under torchrun with a rank per device."""
    first = args.specs[0]
    device = resolve_device(first["device"])
    world = first["gpus"] if device == "cuda" else first["procs"]
    with gpus.assign(world if device == "cuda" else 0, args.lock_dir) as ids:
        if ids:
            os.environ.update(gpus.cuda_visible(ids))
            os.environ["LRSTUDY_GPU_IDS"] = ",".join(ids)
        if world == 1:
            faults.STOP.install()  # SIGTERM/SIGUSR1 checkpoint at the next step, then exit
            for spec, out in jobs:
                train(spec, args.data, out, bounds, ids)
            return
        argv = argv if argv is not None else sys.argv[1:]
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={world}",
            "-m",
            "lrstudy.train",
            *argv,
        ]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
