r"""One training job: LeNet5 (or ResNet-18) under one LR schedule, through ColossalAI's Booster.

    python -m lrstudy.train --spec JSON --data results/data/mnist10k.pt \
        --out results/runs/step/seed0

`--spec` is one run's spec (lrstudy.spec.Spec.to_dict, built by lrstudy.spec.run_spec) or a JSON
list of them, one `--out` folder each (lrstudy.spec.train_argv builds the command line): a job
trains its seeds one after another in one process, so the ~7 s of importing torch and ColossalAI
is paid once per scheduler configuration, not once per seed.

A single-rank job runs in this process with `Booster()` and `OptimizerWrapper` (no launcher).
A multi-rank job (`gpus`/`procs` > 1) leases its GPUs, then re-runs this module under torchrun;
each rank joins through `colossalai.launch_from_torch` and trains with TorchDDPPlugin (or the
plugin the config names). Rank 0 writes steps.csv, evals.csv and run.json.

Read top to bottom: the run's length and input, the components and their Booster (`set_up`),
the loop (`run_loop`, `train_epoch`, `train_step`), the run record, `train`, then the command.
The runtime (device, ranks), checkpoints, the run's log and evaluation are modules of their own.
"""

# ruff: noqa: E402 (the environment is set before torch and ColossalAI are imported)
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# bitsandbytes (imported by ColossalAI's booster) imports torch._inductor, which would start a pool
# of compile workers that no job here uses: ~3 CPU-seconds a job.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import torch

from lrstudy import factories, faults, finished, gpus, inputs, io, losses, optimizers, precision
from lrstudy.checkpoints import Checkpoints
from lrstudy.components import boost, build_components
from lrstudy.evaluation import chance_levels, collapsed, data_facts, evaluate, loss_name
from lrstudy.families import SELECTED
from lrstudy.inputs import Length, run_length, shuffled_batches
from lrstudy.runlog import EVAL_FIELDS, STEP_FIELDS, RunLog
from lrstudy.runtime import Runtime, barrier, resolve_device, seed_everything, start_runtime
from lrstudy.spec import Spec, spec_hash


# ------------------------------------------------------------------------------- the set-up
@dataclass
class Training:
    """One run being trained: its spec, data and boosted components, its log and its step."""

    spec: Spec
    runtime: Runtime
    out: Path
    digest: str  # what a checkpoint or a finished seed's copy must have been made for
    dataset: dict
    length: Length
    loss_kind: str
    records: dict  # the components' part of run.json
    booster: object
    plugin: object
    model: object
    optimizer: object
    criterion: object
    scheduler: object
    checkpoints: Checkpoints
    log: RunLog
    step: int
    first_epoch: int

    @property
    def classification(self) -> bool:
        return data_facts(self.dataset["meta"])["task"] == "classification"


def set_up(spec: Spec, runtime: Runtime, dataset: dict, out: Path, digest: str, bounds) -> Training:
    """The components, boosted, and the log; resumed from the run folder's last checkpoint when
    it belongs to this spec and these data."""
    length = run_length(spec, len(dataset["train"][0]))
    model, optimizer, scheduler, records = build_components(spec, dataset, length, bounds)
    loss_kind = loss_name(spec, dataset["meta"])
    booster, plugin, model, optimizer, criterion, scheduler = boost(
        spec, runtime, model.to(runtime.device), optimizer, scheduler, loss_kind
    )
    checkpoints = Checkpoints(out, booster, runtime.rank)
    state = checkpoints.load(model, optimizer, scheduler, digest)
    log = RunLog(spec, out, state, runtime.rank)
    step, first_epoch = (state["step"], state["epoch"]) if state else (0, 0)
    return Training(
        spec=spec,
        runtime=runtime,
        out=out,
        digest=digest,
        dataset=dataset,
        length=length,
        loss_kind=loss_kind,
        records=records,
        booster=booster,
        plugin=plugin,
        model=model,
        optimizer=optimizer,
        criterion=criterion,
        scheduler=scheduler,
        checkpoints=checkpoints,
        log=log,
        step=step,
        first_epoch=first_epoch,
    )


# --------------------------------------------------------------------------------- the loop
def evaluate_splits(job: Training, epoch: int, splits=None, size: int | None = None) -> None:
    """Rank 0 evaluates `splits` (default the spec's) at the job's step; a schedule-free optimizer
    is evaluated at its averaged weights (every rank switches)."""
    model = job.model.unwrap() if hasattr(job.model, "unwrap") else job.model
    loss_sum = losses.batch_sum(job.loss_kind)
    with optimizers.evaluation_weights(job.optimizer):
        if job.runtime.rank == 0:
            for split in splits or job.spec.eval_splits:
                part = "valid" if split == "range_valid" else split
                chunks = inputs.eval_batches(job.dataset, part, size, job.runtime.device)
                measured = evaluate(model, chunks, loss_sum, job.classification)
                job.log.evaluation(job.step, epoch, split, *measured)


def save(job: Training, epoch: int) -> None:
    """A checkpoint at the job's step; a resumed run starts `epoch` at batch step - epoch x
    steps_per_epoch. Schedule-free optimizers are checkpointed in eval mode."""
    with optimizers.evaluation_weights(job.optimizer):
        state = {**job.log.state(), "step": job.step, "epoch": epoch, "spec_hash": job.digest}
        job.checkpoints.save(job.model, job.optimizer, job.scheduler, state)


def train_step(job: Training, x, y, epoch: int) -> None:
    with precision.autocast(job.spec.precision, job.runtime.device, job.plugin):
        loss = job.criterion(job.model(x), y)
    # the LR and momentum this step trains with, read before the schedule moves them on
    lr, momentum = job.scheduler.get_last_lr()[0], optimizers.momentum(job.optimizer)
    job.log.step(job.step, epoch, lr, momentum, loss)
    job.optimizer.zero_grad(set_to_none=True)
    job.booster.backward(loss, job.optimizer)
    job.optimizer.step()
    job.scheduler.step()
    job.step += 1


def train_epoch(job: Training, batches, epoch: int, progress) -> bool:
    """The epoch's steps (from where a resumed run stopped), its evaluations, and a checkpoint
    and exit on a stop request; False once the run diverged."""
    spec, total = job.spec, job.length.total_steps
    valid_every = spec.range_test.valid_every if spec.range_test else None
    done_in_epoch = max(0, job.step - epoch * job.length.steps_per_epoch)  # > 0: resumed
    x_train, y_train = job.dataset["train"]
    epoch_batches = batches(x_train, y_train, spec, epoch, job.runtime)
    for x, y in itertools.islice(epoch_batches, done_in_epoch, None):
        if job.step >= total:
            break
        train_step(job, x, y, epoch)
        progress.update()
        every = spec.eval_every  # None: at step 0 and at the end only
        at_eval = (every and job.step % every == 0) or job.step == total
        at_range_valid = bool(valid_every) and job.step % valid_every == 0
        if at_eval or at_range_valid:
            if not job.log.flush():
                return False
            if at_eval:
                evaluate_splits(job, epoch)
            if at_range_valid:
                evaluate_splits(job, epoch, ("range_valid",), spec.range_test.valid_subset)
        if faults.STOP.requested():  # SIGTERM/SIGUSR1: checkpoint this step, then exit
            if not job.log.flush():
                return False
            save(job, epoch)
            progress.close()
            raise faults.STOP.exit(job.checkpoints.folder(), job.step)
    return True


def run_loop(job: Training, batches) -> tuple[str, float, float]:
    """Every epoch from where the job starts: (status, loop start, loop seconds), the status
    `completed` or `diverged` (a diverged run is evaluated where it stopped)."""
    from tqdm import tqdm

    if job.step == 0:
        evaluate_splits(job, 0)
    progress = tqdm(
        total=job.length.total_steps,
        initial=job.step,
        desc=f"{job.spec.run} seed {job.spec.seed}",
        file=sys.stderr,
        mininterval=2,
        disable=job.runtime.rank != 0,
    )
    status, loop_started = "completed", time.time()
    job.model.train()
    optimizers.training_weights(job.optimizer)  # schedule-free ones start, and resume, in eval mode
    for epoch in range(job.first_epoch, job.length.epochs):
        if not train_epoch(job, batches, epoch, progress) or not job.log.flush():
            status = "diverged"
            break
        done, every = epoch + 1, job.spec.checkpoint_every
        if every and done % every == 0 and job.step < job.length.total_steps:
            save(job, done)
    progress.close()
    loop_seconds = time.time() - loop_started
    if status == "diverged" and job.log.evals[-1]["step"] != job.step:
        evaluate_splits(job, job.log.steps[-1]["epoch"])  # where the run stopped
    return status, loop_started, loop_seconds


# ------------------------------------------------------------------------------- the record
def final_status(job: Training, status: str, baseline: float | None) -> str:
    """`collapsed` for a completed scheduled run that never learned, else `status`."""
    num_classes = data_facts(job.dataset["meta"])["num_classes"]
    if status == "completed" and not job.spec.range_test:
        if collapsed(job.log.evals, num_classes, baseline):
            return "collapsed"
    return status


def run_record(job: Training, status: str, times: dict, bounds, gpu_ids, chance) -> dict:
    """What run.json records (in its order); `times`: started, loop_started, loop_seconds."""
    spec, runtime, plugin = job.spec, job.runtime, job.plugin
    return {
        "run": spec.run,
        "seed": spec.seed,
        "status": status,
        "steps": len(job.log.steps),
        "total_steps": job.length.total_steps,
        "steps_per_epoch": job.length.steps_per_epoch,
        "epochs": job.length.epochs,
        "wall_seconds": round(time.time() - times["started"], 3),
        "spec_hash": job.digest,
        "loop_started_at": times["loop_started"],
        "loop_seconds": round(times["loop_seconds"], 3),
        "device": runtime.device,
        "device_name": torch.cuda.get_device_name() if runtime.cuda else io.host()["processor"],
        "world_size": runtime.world,
        "plugin": type(plugin).__name__ if plugin else "none (Booster + OptimizerWrapper)",
        "precision": precision.describe(spec.precision, runtime.device, plugin),
        "gpu_ids": list(gpu_ids),
        "threads": torch.get_num_threads(),
        "range_test": spec.range_test.to_dict() if spec.range_test else None,
        "task": data_facts(job.dataset["meta"])["task"],
        "loss": job.loss_kind,
        "baseline_valid_loss": chance["valid"]["baseline"],
        "chance": chance,
        "code": factories.provenance(spec.to_dict()),
        **job.records,
        "bounds": bounds,
        "spec": spec.to_dict(),
        "versions": io.versions(),
        "host": io.host(),
    }


def write_run(job: Training, result: dict) -> None:
    """Rank 0 writes the run folder's files, run.json last (it means the folder is complete)."""
    if job.runtime.rank == 0:
        io.write_csv(job.out / "steps.csv", STEP_FIELDS, job.log.steps)
        io.write_csv(job.out / "evals.csv", EVAL_FIELDS, job.log.evals)
        io.write_json(job.out / "run.json", result)
        finished.keep(job.out)  # until the job's last seed is done (lrstudy.finished)
        job.log.close()
        if not job.spec.keep_checkpoints:
            job.checkpoints.clear()
    barrier()


def train(
    spec: Spec,
    data_path: Path,
    out: Path,
    bounds: dict | None = None,
    gpu_ids=(),
    batches=shuffled_batches,
) -> dict:
    """Train one run (one seed) into `out`; returns what run.json records."""
    started = time.time()
    runtime = start_runtime(spec)
    seed_everything(spec.seed)
    dataset = inputs.load(data_path, spec, runtime.device)
    # what a checkpoint or a finished seed's copy must have been made for (config, bounds, data)
    digest = spec_hash({**spec.to_dict(), "bounds": bounds, "data": dataset["fingerprint"]})
    restored = finished.restore(out, digest, runtime.rank)
    if restored is not None:
        return restored
    if dataset.get("loader") and batches is shuffled_batches:
        batches = inputs.loader_batches  # the same batches, read through a DataLoader
    job = set_up(spec, runtime, dataset, out, digest, bounds)
    status, loop_started, loop_seconds = run_loop(job, batches)
    chance = chance_levels(dataset, losses.batch_sum(job.loss_kind), runtime.device)
    status = final_status(job, status, chance["valid"]["baseline"])
    times = {"started": started, "loop_started": loop_started, "loop_seconds": loop_seconds}
    result = run_record(job, status, times, bounds, gpu_ids, chance)
    write_run(job, result)
    return result


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


def selected(spec: Spec, selection: str | None) -> Spec:
    """A confirmation run's spec with the multiplier its family's tuning chose."""
    tuning = spec.tuning or {}
    if tuning.get("multiplier") != SELECTED:
        return spec
    if not selection:
        raise SystemExit(f"run {spec.run} trains the tuning stage's choice: give --selection")
    chosen = json.loads(Path(selection).read_text())
    return spec.replace(tuning={**tuning, "multiplier": chosen["multiplier"]})


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--spec",
        required=True,
        help="a run's spec as JSON (lrstudy.spec.run_spec), or a list of them",
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
        selected(Spec.from_dict(spec), args.selection)
        for spec in (specs if isinstance(specs, list) else [specs])
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
    device = resolve_device(first.device)
    world = first.world(device)
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
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command = [*torchrun, f"--nproc-per-node={world}", "-m", "lrstudy.train", *argv]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
