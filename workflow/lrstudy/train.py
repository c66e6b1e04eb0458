"""One training job: LeNet5 (or ResNet-18) under one LR schedule, through ColossalAI's Booster.

    python -m lrstudy.train --spec JSON --data results/data/digits.pt --out results/runs/step/seed0

A single-rank job runs in this process with `Booster()` and `OptimizerWrapper` (no launcher).
A multi-rank job (`gpus`/`procs` > 1) leases its GPUs, then re-runs this module under torchrun;
each rank joins through `colossalai.launch_from_torch` and trains with TorchDDPPlugin (or the
plugin the config names). Rank 0 writes steps.csv, evals.csv and run.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lrstudy import data, gpus, io, models, precision, schedules
from lrstudy.config import spec_hash
from lrstudy.rangetest import Smoother

STEP_FIELDS = ["step", "epoch", "lr", "train_loss", "smoothed_loss"]
EVAL_FIELDS = ["step", "epoch", "split", "loss", "accuracy"]
EVAL_BATCH = 1024


def resolve_device(requested: str) -> str:
    """`auto` is decided on the node that runs the job, never on the machine that built the DAG."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def make_plugin(name: str, world: int, device: str, precision: str = "fp32"):
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


@torch.inference_mode()
def evaluate(model, x, y) -> tuple[float, float]:
    model.eval()
    loss_sum, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    for i in range(0, len(x), EVAL_BATCH):
        logits = model(x[i : i + EVAL_BATCH])
        loss_sum += F.cross_entropy(logits, y[i : i + EVAL_BATCH], reduction="sum")
        correct += (logits.argmax(1) == y[i : i + EVAL_BATCH]).sum()
    model.train()
    return loss_sum.item() / len(x), correct.item() / len(x)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


class Checkpoints:
    """Resumable state in the run folder: ckpt-NNNNN/ folders, the newest named by LATEST.

    A folder is complete before LATEST points at it (written with an atomic rename), so a kill at
    any moment leaves the previous checkpoint usable.
    """

    def __init__(self, out: Path, booster, rank: int):
        self.out, self.booster, self.rank = out, booster, rank
        self.latest = out / "LATEST"

    def save(self, model, optimizer, scheduler, state: dict) -> None:
        folder = self.out / f"ckpt-{state['step']:07d}"
        if self.rank == 0:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        _barrier()
        self.booster.save_model(model, str(folder / "model.pt"), shard=False)
        self.booster.save_optimizer(optimizer, str(folder / "optimizer.pt"), shard=False)
        self.booster.save_lr_scheduler(scheduler, str(folder / "scheduler.pt"))
        if self.rank == 0:
            state = {**state, "rng": {"torch": torch.get_rng_state(), "python": random.getstate()}}
            torch.save(state, folder / "state.pt")
            old = self.folder()
            io.write_text(self.latest, folder.name)
            if old and old != folder:
                shutil.rmtree(old, ignore_errors=True)
        _barrier()

    def folder(self) -> Path | None:
        if not self.latest.is_file():
            return None
        folder = self.out / self.latest.read_text().strip()
        return folder if (folder / "state.pt").is_file() else None

    def load(self, model, optimizer, scheduler, expected_hash: str) -> dict | None:
        folder = self.folder()
        if folder is None:
            return None
        state = torch.load(folder / "state.pt", weights_only=False)
        if state["spec_hash"] != expected_hash:  # the config or the data changed since: start afresh
            print(f"ignoring checkpoint {folder}: it belongs to another configuration or other data", file=sys.stderr)
            return None
        self.booster.load_model(model, str(folder / "model.pt"))
        self.booster.load_optimizer(optimizer, str(folder / "optimizer.pt"))
        self.booster.load_lr_scheduler(scheduler, str(folder / "scheduler.pt"))
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        print(f"resuming from checkpoint {folder} (step {state['step']}, epoch {state['epoch']})", file=sys.stderr)
        return state

    def clear(self) -> None:
        if self.rank == 0:
            # LATEST first: a kill half-way must not leave it naming a half-deleted folder
            self.latest.unlink(missing_ok=True)
            for folder in self.out.glob("ckpt-*"):
                shutil.rmtree(folder, ignore_errors=True)


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(values)
        values /= torch.distributed.get_world_size()
    return values


def train(spec: dict, data_path: Path, out: Path, bounds: dict | None = None, gpu_ids=()) -> dict:
    started = time.time()
    torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    world = spec["gpus"] if device == "cuda" else spec["procs"]
    rank = 0
    if world > 1:
        import colossalai

        colossalai.launch_from_torch(backend="nccl" if device == "cuda" else "gloo", seed=spec["seed"], verbose=False)
        rank = torch.distributed.get_rank()
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        device = f"cuda:{torch.cuda.current_device()}"
    torch.use_deterministic_algorithms(True, warn_only=True)
    precision.check(spec["precision"], device)  # [issue15] fp16 needs CUDA
    seed_everything(spec["seed"])

    # The whole dataset lives on the device as tensors: batches are index gathers, no DataLoader.
    dataset = data.load_prepared(data_path, device)
    x_train, y_train = dataset["train"]
    local_batch = spec["batch_size"] // world
    # Full batches only (the last partial one is dropped), so every rank gets batch_size / world.
    steps_per_epoch = len(x_train) // spec["batch_size"]
    if steps_per_epoch == 0:
        raise SystemExit(f"batch_size {spec['batch_size']} exceeds the {len(x_train)} training samples")
    test = spec.get("range_test")
    total_steps = test["steps"] if test and test.get("steps") else steps_per_epoch * spec["epochs"]
    epochs = math.ceil(total_steps / steps_per_epoch)

    model = models.build(spec["model"], dataset["meta"]["image_shape"][0], dataset["meta"]["num_classes"]).to(device)
    opt_kwargs = spec["optimizer"].get("kwargs", {})
    if bounds is not None:
        opt_kwargs = schedules.resolve_auto(None, opt_kwargs, bounds)
    optimizer = schedules.build_optimizer(model.parameters(), spec["optimizer"]["name"], opt_kwargs)
    if test:
        scheduler = schedules.build_range_test(optimizer, test, total_steps)
        sched_record = {"class": "LambdaLR", "range_test": test}
    else:
        name, kwargs = spec["scheduler"]["class"], spec["scheduler"]["kwargs"]
        if bounds is not None:
            kwargs = schedules.resolve_auto(name, kwargs, bounds)
        scheduler = schedules.build_scheduler(optimizer, name, kwargs, steps_per_epoch, epochs)
        sched_record = {"class": name, "kwargs": schedules.fill_kwargs(name, kwargs, steps_per_epoch, epochs), "config_kwargs": spec["scheduler"]["kwargs"]}

    from colossalai.booster import Booster
    from colossalai.interface import OptimizerWrapper

    plugin = make_plugin(spec["plugin"], world, device, spec["precision"])
    mixed_precision = precision.booster_mixed_precision(spec["precision"], device, plugin)  # [issue15]
    booster = Booster(plugin=plugin, device=device.split(":")[0], mixed_precision=mixed_precision)
    if plugin is None and mixed_precision is None:
        optimizer = OptimizerWrapper(optimizer)  # gives booster.backward() its optimizer.backward()
    model, optimizer, criterion, _, scheduler = booster.boost(model, optimizer, torch.nn.CrossEntropyLoss(), lr_scheduler=scheduler)
    raw_model = model.unwrap() if hasattr(model, "unwrap") else model

    checkpoints = Checkpoints(out, booster, rank)
    digest = spec_hash({**spec, "bounds": bounds, "data": dataset["fingerprint"]})
    state = checkpoints.load(model, optimizer, scheduler, digest) or {
        "step": 0, "epoch": 0, "steps": [], "evals": [], "smoother": Smoother(test["smooth_beta"] if test else 0.98), "best": math.inf,
    }
    steps, evals, smoother = state["steps"], state["evals"], state["smoother"]
    writer = tensorboard_writer(spec, out, state["step"]) if rank == 0 else None
    valid_every = test.get("valid_every") if test else None
    stop_factor = test.get("stop_factor") if test else None

    def record_evals(step, epoch):
        with schedules.evaluation_weights(optimizer):  # [issue15] schedule-free: evaluate its average (every rank switches)
            if rank != 0:
                return
            for split in ("valid", "test"):
                loss, acc = evaluate(raw_model, *dataset[split])
                evals.append({"step": step, "epoch": epoch, "split": split, "loss": loss, "accuracy": acc})
                if writer:
                    writer.add_scalar(f"{split}/loss", loss, step)
                    writer.add_scalar(f"{split}/accuracy", acc, step)

    if state["step"] == 0:
        record_evals(0, 0)
    status = "completed"
    pending: list[tuple[int, int, float, torch.Tensor]] = []

    def flush() -> bool:
        """Move pending losses to the host (one sync per flush); False once the run diverged."""
        if not pending:
            return True
        losses = _mean_over_ranks(torch.stack([p[3] for p in pending]).float()).tolist()
        for (step, epoch, lr, _), loss in zip(pending, losses):
            smoothed = smoother.update(loss)
            steps.append({"step": step, "epoch": epoch, "lr": lr, "train_loss": loss, "smoothed_loss": smoothed})
            if writer:
                writer.add_scalar("lr", lr, step)
                writer.add_scalar("train/loss", loss, step)
            state["best"] = min(state["best"], smoothed) if math.isfinite(smoothed) else state["best"]
            if not math.isfinite(loss) or (stop_factor and smoothed > stop_factor * state["best"]):
                pending.clear()
                return False
        pending.clear()
        return True

    from tqdm import tqdm

    progress = tqdm(total=total_steps, initial=state["step"], desc=f"{spec['run']} seed {spec['seed']}", file=sys.stderr, mininterval=2, disable=rank != 0)
    step = state["step"]
    model.train()
    schedules.training_weights(optimizer)  # [issue15] schedule-free optimizers start (and resume) in eval mode
    loop_started = time.time()
    for epoch in range(state["epoch"], epochs):
        # The data order depends only on (seed, epoch): a resumed run sees the same batches.
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(spec["seed"] * 100003 + epoch)).to(device)
        for batch in range(steps_per_epoch):
            if step >= total_steps:
                break
            index = order[batch * spec["batch_size"] : (batch + 1) * spec["batch_size"]][rank * local_batch : (rank + 1) * local_batch]
            lr = scheduler.get_last_lr()[0]
            with precision.autocast(spec["precision"], device, plugin):  # [issue15] bf16 without a plugin that controls it
                loss = criterion(model(x_train[index]), y_train[index])
            optimizer.zero_grad(set_to_none=True)
            booster.backward(loss, optimizer)
            optimizer.step()
            scheduler.step()
            pending.append((step, epoch, lr, loss.detach()))
            step += 1
            progress.update()
            if step % spec["eval_every"] == 0 or step == total_steps or (valid_every and step % valid_every == 0):
                if not flush():
                    status = "diverged"
                    break
                if step % spec["eval_every"] == 0 or step == total_steps:
                    record_evals(step, epoch)
                if valid_every and step % valid_every == 0:
                    with schedules.evaluation_weights(optimizer):  # [issue15] on every rank
                        if rank == 0:
                            subset = [t[: test["valid_subset"]] for t in dataset["valid"]]
                            loss_v, acc_v = evaluate(raw_model, *subset)
                            evals.append({"step": step, "epoch": epoch, "split": "range_valid", "loss": loss_v, "accuracy": acc_v})
        if status == "diverged" or not flush():
            status = "diverged"
            break
        done = epoch + 1
        if spec["checkpoint_every"] and done % spec["checkpoint_every"] == 0 and step < total_steps:
            with schedules.evaluation_weights(optimizer):  # [issue15] schedule-free: checkpoint in eval mode
                checkpoints.save(model, optimizer, scheduler, {**state, "step": step, "epoch": done, "spec_hash": digest})
    progress.close()
    loop_seconds = time.time() - loop_started
    if status == "diverged" and evals[-1]["step"] != step:
        record_evals(step, steps[-1]["epoch"])  # where the run stopped

    result = {
        "run": spec["run"], "seed": spec["seed"], "status": status, "steps": len(steps), "total_steps": total_steps,
        "steps_per_epoch": steps_per_epoch, "epochs": epochs, "wall_seconds": round(time.time() - started, 3),
        "loop_started_at": loop_started, "loop_seconds": round(loop_seconds, 3),
        "device": device, "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else io.host()["processor"],
        "world_size": world, "plugin": type(plugin).__name__ if plugin else "none (Booster + OptimizerWrapper)",
        "precision": precision.describe(spec["precision"], device, plugin),  # [issue15]
        "gpu_ids": list(gpu_ids), "threads": torch.get_num_threads(), "scheduler": sched_record, "range_test": test,
        "optimizer": {"name": spec["optimizer"]["name"], "kwargs": opt_kwargs}, "bounds": bounds,
        "spec": spec, "versions": io.versions(), "host": io.host(),
    }
    if rank == 0:
        io.write_csv(out / "steps.csv", STEP_FIELDS, steps)
        io.write_csv(out / "evals.csv", EVAL_FIELDS, evals)
        io.write_json(out / "run.json", result)  # last: its presence means the run folder is complete
        if writer:
            writer.close()
        if not spec["keep_checkpoints"]:
            checkpoints.clear()
    _barrier()
    return result


def tensorboard_writer(spec: dict, out: Path, step: int):
    if not spec.get("tensorboard"):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=step or None)


def load_bounds(path: str | None) -> dict | None:
    if not path:
        return None
    suggestion = json.loads(Path(path).read_text())
    if not suggestion.get("bounds") or suggestion["bounds"].get("max_lr") is None:
        raise SystemExit(f"{path}: the range test gave no usable bounds ({suggestion.get('status')}); set the values by hand")
    return suggestion["bounds"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="the run's resolved spec as JSON (lrstudy.config.run_spec)")
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset file")
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument("--suggestion", help="range-test suggestion JSON that fills `auto` values")
    parser.add_argument("--lock-dir", default=".snakemake/gpu-locks", help="where local GPU leases are held")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    bounds = load_bounds(args.suggestion)
    args.out.mkdir(parents=True, exist_ok=True)

    if "LOCAL_RANK" in os.environ:  # a rank started by torchrun below
        train(spec, args.data, args.out, bounds, os.environ.get("LRSTUDY_GPU_IDS", "").split(",") if os.environ.get("LRSTUDY_GPU_IDS") else [])
        return
    device = resolve_device(spec["device"])
    world = spec["gpus"] if device == "cuda" else spec["procs"]
    with gpus.assign(world if device == "cuda" else 0, args.lock_dir) as ids:
        if ids:
            os.environ.update(gpus.cuda_visible(ids))
            os.environ["LRSTUDY_GPU_IDS"] = ",".join(ids)
        if world == 1:
            train(spec, args.data, args.out, bounds, ids)
            return
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}", "-m", "lrstudy.train", *(argv if argv is not None else sys.argv[1:])]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
