"""Benchmark of the training path against plain PyTorch and the source's DataLoader pipeline.

    python workflow/benchmarks/bench.py [--steps 200] [--repeats 5] [--threads 1] \
        [--no-study] [--out results/bench/bench.json]          (what `make bench` runs)

A script beside the pipeline, not part of its package: it puts this checkout's workflow/ first
on sys.path and measures lrstudy as the rules run it. One function per measurement
(MEASUREMENTS, measure_startup, measure_ranks, measure_study); the targets are TARGETS.

Measured in one process, in interleaved rounds (every kind once per round, the order reversed
on every other round), warm-up excluded, the median over rounds reported:

  plain      a plain PyTorch loop: LeNet5, SGD, CrossEntropyLoss, index-gather batches from
             in-memory tensors (a fresh permutation every epoch)
  ours       lrstudy.train.train() itself, ColossalAI's Booster + OptimizerWrapper included: one
             run of 1 + E epochs, ms/step = seconds from the loop's request for the second epoch's
             first batch to its request for the last batch / the steps between, so set-up, the
             first epoch and the final evaluation are left out
  loader     the same train.train() fed by the source-style pipeline: torchvision's MNIST dataset
             (IDX files written from the digits data) with per-sample Resize(32), ToTensor(),
             Normalize through a DataLoader (num_workers=0), passed as train(batches=...);
             timed the same way
  mem-input  the in-memory input path alone (permutation + gather; samples/s, no model)
  dl-input   the DataLoader input path alone

at each batch size, then job start-up (process launch to the first training step of
`python -m lrstudy.train` as the rule runs it, from run.json's loop_started_at) beside the floor
`python -c "import torch; from colossalai.booster import Booster"`, and (full mode) the 2-rank CPU
cost: train at procs=2 (torchrun, gloo) vs procs=1, and (full mode, `--study`) the default study's
wall time: `snakemake --cores 4` on config/config.yaml in a temporary copy of the workflow, from
an empty results/ (about four minutes on 2 cores; `--no-study` leaves it out).

The `ours` and `loader` runs measure the training step: evaluation and checkpoints are switched off
inside the measured span (eval_every beyond the run, checkpoint_every 0); the row `configured`
adds them back as the config sets them, to show what they cost per step.

Ratios (and start-up minus floor) are medians of the per-round ratios (differences): the two
measurements of a round ran next to each other, so a burst of load from other processes on the
machine hits both. The JSON (--out) holds every repeat, the machine and the spec.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "workflow"
sys.path.insert(0, str(WORKFLOW))  # this checkout's lrstudy, installed or not (as the Snakefile)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lrstudy import data, io, layout, models  # noqa: E402
from lrstudy.spec import RangeTest, Spec, run_spec, train_argv  # noqa: E402

NEVER = 10**9  # an eval_every no run reaches: evaluation only at step 0 and at the end
# What the bench aims for, stated once: (ratio, comparison, limit, what it compares).
TARGETS = (
    ("b_over_a", "<=", 1.05, "b/a  ours / plain PyTorch, ms/step"),
    ("c_over_b", ">=", 2.0, "c/b  DataLoader-fed / ours, ms/step (b >= 2x c in samples/s)"),
    ("input_speedup", ">=", 50.0, "input alone: in-memory / DataLoader, samples/s"),
)
STARTUP_TARGET = ("startup_extra_s", "<=", 1.0, "start-up to first step, ours - floor, s")
# The study's files a copy of the workflow needs (the default study from an empty results/).
STUDY_FILES = ("Snakefile", "workflow", "config", "envs", "report_template")


# ------------------------------------------------------------------------------------ the inputs
def write_mnist(root: Path, prepared: dict) -> Path:
    """MNIST-format raw files from the prepared digits (uint8 32x32 -> 28x28, as MNIST ships)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = prepared[split]["x"].float()
        x28 = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
        images = x28.round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
        labels = prepared[split]["y"].numpy().astype(np.uint8)
        data.write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        data.write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        back = data.read_idx(raw / f"{prefix}-images-idx3-ubyte")
        assert back.shape == images.shape and (back == images).all(), "IDX round trip failed"
    return root


def source_loader(root: Path, meta: dict, batch: int):
    """The source template's pipeline: MNIST + per-sample Resize/ToTensor/Normalize + DataLoader."""
    from torchvision import datasets, transforms

    normalize = transforms.Normalize(meta["mean"], meta["std"])
    transform = transforms.Compose([transforms.Resize(32), transforms.ToTensor(), normalize])
    dataset = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=0
    )


def loader_fed(loader):
    """The source-style input path for train(batches=...): the same signature as
    inputs.shuffled_batches, one DataLoader epoch per train() epoch (both drop the last partial
    batch), the batches moved to the run's device."""

    def batches(x, y, spec, epoch, runtime):
        for images, labels in loader:
            yield images.to(runtime.device), labels.to(runtime.device)

    return batches


# -------------------------------------------------------------------------------- the measurements
def plain_seconds(x, y, num_classes: int, spec: Spec, steps: int, warmup: int) -> float:
    """Seconds for `steps` steps of a plain PyTorch loop (after `warmup` steps)."""
    batch = spec.batch_size
    steps_per_epoch = len(x) // batch
    torch.manual_seed(spec.seed)
    model = models.LeNet5(x.shape[1], num_classes)
    optimizer_class = getattr(torch.optim, spec.optimizer["name"])
    optimizer = optimizer_class(model.parameters(), **spec.optimizer.get("kwargs", {}))
    criterion = torch.nn.CrossEntropyLoss()
    model.train()

    def run(n):
        done = 0
        while done < n:
            order = torch.randperm(len(x))
            for b in range(steps_per_epoch):
                if done == n:
                    break
                index = order[b * batch : (b + 1) * batch]
                loss = criterion(model(x[index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                done += 1
        loss.item()

    run(warmup)
    started = time.perf_counter()
    run(steps)
    return time.perf_counter() - started


def steady_seconds(
    spec: Spec, data_path: Path, work: Path, epochs: int, loader=None
) -> tuple[float, int]:
    """(seconds, steps) of one in-process train.train() run past its first epoch: from the loop's
    request for the second epoch's first batch to its request for the run's last batch. Every
    step between is whole (its batch, its step, an evaluation or checkpoint where the spec has
    one); set-up, the first epoch and the last step's final evaluation are left out. One run: the
    span cannot come out negative however loaded the machine is (two runs' loop times
    differenced could, and did, on a busy CI machine)."""
    from lrstudy import inputs, train

    out = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    source = loader_fed(loader) if loader is not None else inputs.shuffled_batches
    requested = []  # when the loop asked for each batch it got

    def batches(x, y, spec, epoch, runtime):
        epoch_batches = source(x, y, spec, epoch, runtime)
        while True:
            asked = time.perf_counter()
            batch = next(epoch_batches, None)
            if batch is None:
                return
            requested.append(asked)
            yield batch

    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        result = train.train(spec.replace(epochs=epochs), data_path, out, batches=batches)
    # a timing needs every step run; a run that trained them all but never learned (collapsed,
    # as a short run on the small digits set may) times the same
    if result["status"] not in ("completed", "collapsed"):
        raise RuntimeError(f"benchmark run {out} ended {result['status']}")
    first = result["steps_per_epoch"]
    return requested[-1] - requested[first], len(requested) - 1 - first


def input_seconds(next_batch, batches: int, min_seconds: float) -> tuple[float, int]:
    """Seconds and samples for at least `batches` batches and `min_seconds` of an input path."""
    samples, started = 0, time.perf_counter()
    while True:
        for _ in range(batches):
            samples += len(next_batch()[1])
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed, samples


def memory_batches(x, y, batch: int):
    """The in-memory input path of train(): a permutation per epoch, then index gathers."""
    state = {"order": None, "b": 0}
    steps_per_epoch = len(x) // batch

    def next_batch():
        if state["order"] is None or state["b"] == steps_per_epoch:
            state["order"], state["b"] = torch.randperm(len(x)), 0
        index = state["order"][state["b"] * batch : (state["b"] + 1) * batch]
        state["b"] += 1
        return x[index], y[index]

    return next_batch


def loader_batches(loader):
    state = {"it": iter(loader)}

    def next_batch():
        try:
            return next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            return next(state["it"])

    return next_batch


def launch_train(spec: Spec, data_path: Path, out: Path, log: Path) -> tuple[float, dict]:
    """Run `python -m lrstudy.train` as the rule does; returns (launch time, run.json)."""
    command = train_argv(spec, data_path, out)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(WORKFLOW), os.environ.get("PYTHONPATH")])),
    }  # this checkout's lrstudy
    with open(log, "w") as handle:
        launched = time.time()
        code = subprocess.run(
            command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, env=env
        ).returncode
    if code:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"python -m lrstudy.train exited {code}; its log ends:\n{tail}")
    return launched, json.loads((out / "run.json").read_text())


FLOOR = "import torch; from colossalai.booster import Booster"


def floor_seconds() -> float:
    """Launch to the end of the floor's imports (the process prints the time then; its exit, which
    the training job's start-up does not include either, is left out)."""
    launched = time.time()
    command = [sys.executable, "-c", FLOOR + "; import time; print(repr(time.time()))"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1]) - launched


# --------------------------------------------------------------------------------------- the setup
def rule_spec(config_path: Path, run: str | None, device: str, threads: int) -> Spec:
    """The spec the training rule passes (config + schema defaults, lrstudy.spec.run_spec)."""
    import yaml
    from snakemake.utils import validate

    from lrstudy import config as study

    config = yaml.safe_load(config_path.read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    run = run or next(name for name in config["runs"] if name not in study.range_runs(config))
    spec = run_spec(config, run, config["seeds"][0])
    return spec.replace(device=device, threads=threads, procs=1, gpus=1)


def machine() -> dict:
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ),
        "versions": io.versions(),
        "host": io.host(),
    }


def median_row(seconds: list[float], steps: list[int], batch: int) -> dict:
    ms = [1000 * s / n for s, n in zip(seconds, steps)]
    med = statistics.median(ms)
    return {
        "ms_per_step": med,
        "samples_per_s": 1000 * batch / med,
        "repeats_ms_per_step": ms,
        "steps": steps,
    }


def input_row(seconds: list[float], samples: list[int], batch: int) -> dict:
    rates = [n / s for s, n in zip(seconds, samples)]
    med = statistics.median(rates)
    return {
        "samples_per_s": med,
        "ms_per_batch": 1000 * batch / med,
        "repeats_samples_per_s": rates,
    }


# ------------------------------------------------------------------- one function per measurement
@dataclass
class Setup:
    """What every measurement reads: the settings, the data (in memory and as a file) and a
    scratch folder."""

    args: argparse.Namespace
    x: torch.Tensor
    y: torch.Tensor
    meta: dict
    data_path: Path
    work: Path


@dataclass
class Plan:
    """One batch size: the measured spec (no evaluation, no checkpoints), the spec as the config
    sets it, the epochs measured after the first, the steps in them, the DataLoader."""

    batch: int
    spec: Spec
    config_spec: Spec
    extra: int
    steps: int
    loader: object


def measure_plain(s: Setup, plan: Plan, warm: bool) -> tuple[float, int]:
    """(a) the plain PyTorch loop: seconds and steps."""
    steps = 2 if warm else plan.steps
    warmup = len(s.x) // plan.batch
    return plain_seconds(s.x, s.y, s.meta["num_classes"], plan.spec, steps, warmup), steps


def _epochs(plan: Plan, warm: bool) -> int:
    return 1 + (1 if warm else plan.extra)


def measure_ours(s: Setup, plan: Plan, warm: bool) -> tuple[float, int]:
    """(b) train.train() with its own input path (inputs.shuffled_batches)."""
    return steady_seconds(plan.spec, s.data_path, s.work, _epochs(plan, warm))


def measure_loader(s: Setup, plan: Plan, warm: bool) -> tuple[float, int]:
    """(c) train.train() fed by the source-style DataLoader (train(batches=...))."""
    return steady_seconds(plan.spec, s.data_path, s.work, _epochs(plan, warm), plan.loader)


def measure_configured(s: Setup, plan: Plan, warm: bool) -> tuple[float, int]:
    """(b') train.train() with evaluation and checkpoints as the config sets them."""
    return steady_seconds(plan.config_spec, s.data_path, s.work, _epochs(plan, warm))


def measure_mem_input(s: Setup, plan: Plan, warm: bool) -> tuple[float, int]:
    """The in-memory input path alone: seconds and samples."""
    least = 0.0 if warm else s.args.min_input_seconds
    return input_seconds(memory_batches(s.x, s.y, plan.batch), plan.steps, least)


def measure_dl_input(s: Setup, plan: Plan, warm: bool) -> tuple[float, int]:
    """The DataLoader input path alone: seconds and samples."""
    least = 0.0 if warm else s.args.min_input_seconds
    return input_seconds(loader_batches(plan.loader), 2 if warm else plan.steps, least)


MEASUREMENTS = {
    "plain": measure_plain,
    "ours": measure_ours,
    "loader": measure_loader,
    "configured": measure_configured,
    "mem_input": measure_mem_input,
    "dl_input": measure_dl_input,
}
KINDS = tuple(MEASUREMENTS)


def measure_steps(s: Setup, plans: dict[int, Plan]) -> dict:
    """Every MEASUREMENTS kind at every batch size: a warm-up round, then interleaved rounds
    (every kind once per round, the order reversed on every other round); medians per kind."""
    args = s.args
    log(f"warm-up ({', '.join(KINDS)} at batch {', '.join(map(str, args.batch_sizes))})")
    for plan in plans.values():
        for kind in KINDS:
            MEASUREMENTS[kind](s, plan, True)
    rows = {batch: {k: ([], []) for k in KINDS} for batch in plans}
    order = [(b, k) for b in plans for k in KINDS]
    for round_ in range(args.repeats):
        for batch, kind in order if round_ % 2 == 0 else reversed(order):
            seconds, count = MEASUREMENTS[kind](s, plans[batch], False)
            if seconds <= 0:
                raise RuntimeError(
                    f"{kind} at batch {batch}: non-positive time {seconds}; raise --steps"
                )
            rows[batch][kind][0].append(seconds)
            rows[batch][kind][1].append(count)
        log(f"round {round_ + 1}/{args.repeats} done")
    results = {}
    for batch, plan in plans.items():
        r = rows[batch]
        results[str(batch)] = {
            k: (input_row if k.endswith("_input") else median_row)(*r[k], batch) for k in KINDS
        }
        results[str(batch)]["measured_steps"] = plan.steps
    return results


def measure_startup(s: Setup, base: Spec) -> dict:
    """Launch to the first training step of `python -m lrstudy.train`, beside the floor import;
    pairs in alternating order (OF FO OF ...)."""
    log(f"start-up: {s.args.startup_repeats} x (python -m lrstudy.train, floor import)")
    spec = base.replace(epochs=1)
    ours, floor = [], []
    for i in range(s.args.startup_repeats):
        for which in ("ours", "floor") if i % 2 == 0 else ("floor", "ours"):
            if which == "ours":
                out, log_path = s.work / f"startup{i}", s.work / f"startup{i}.log"
                launched, run = launch_train(spec, s.data_path, out, log_path)
                ours.append(run["loop_started_at"] - launched)
            else:
                floor.append(floor_seconds())
    return {
        "ours_s": statistics.median(ours),
        "floor_s": statistics.median(floor),
        "ours_runs_s": ours,
        "floor_runs_s": floor,
        # median of the paired differences (each pair run back to back, the order alternating)
        "extra_s": statistics.median(o - f for o, f in zip(ours, floor)),
        "floor_command": f"python -c {FLOOR!r}",
    }


def measure_ranks(s: Setup, measured: Spec) -> dict:
    """`python -m lrstudy.train` at procs=1 and procs=2 (torchrun, gloo), one run each."""
    log("ranks: python -m lrstudy.train at procs=1 and procs=2 (torchrun, gloo), one run each")
    batch = s.args.batch_sizes[0]
    epochs = max(1, round(s.args.steps / (len(s.x) // batch)))
    per = {}
    for procs in (1, 2):
        spec = measured.replace(batch_size=batch, epochs=epochs, procs=procs, plugin="auto")
        out, log_path = s.work / f"procs{procs}", s.work / f"procs{procs}.log"
        launched, run = launch_train(spec, s.data_path, out, log_path)
        ms = 1000 * run["loop_seconds"] / run["steps"]
        per[procs] = {
            "ms_per_step": ms,
            "steps": run["steps"],
            "plugin": run["plugin"],
            "world_size": run["world_size"],
            "startup_s": run["loop_started_at"] - launched,
            "samples_per_s": 1000 * batch / ms,
        }
    ratio = per[2]["ms_per_step"] / per[1]["ms_per_step"]
    return {"batch_size": batch, "procs1": per[1], "procs2": per[2], "procs2_over_procs1": ratio}


def measure_study(cores: int) -> dict:
    """Wall seconds of `snakemake --cores N` on the default config (config/config.yaml) in a
    temporary copy of the workflow, from an empty results/."""
    log(f"study: snakemake --cores {cores} on the default config, in a fresh copy")
    with tempfile.TemporaryDirectory(prefix="lrstudy-study-") as tmp:
        copy = Path(tmp) / "workflow-copy"
        copy.mkdir()
        for name in STUDY_FILES:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, copy / name)
        env = {**os.environ, "PYTHONPATH": str(copy / "workflow")}
        command = [sys.executable, "-m", "snakemake", "--cores", str(cores)]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode:
            raise RuntimeError(f"the default study failed:\n{(done.stdout + done.stderr)[-3000:]}")
        runs = len(list((copy / layout.RUNS_FOLDER).glob(layout.RECORD_GLOB)))
        ideal = study_ideal(copy / "results", min(cores, os.cpu_count() or 1))
    return {
        "wall_s": seconds,
        "cores": cores,
        "run_records": runs,
        "command": f"snakemake --cores {cores}",
        "config": "config/config.yaml",
        "ideal": ideal,
        "wall_over_ideal": seconds / ideal["ideal_s"],
    }


def study_ideal(results: Path, cores: int, sample_steps: int = 200) -> dict:
    """The study's own work timed in a plain PyTorch loop, divided by the cores: every run's
    training steps (run.json `steps`) at the plain loop's seconds per step on the study's data,
    plus every evaluation (evals.csv rows) at one forward pass over that split. Nothing of the
    study's start-ups, scheduling, I/O or serial stages is in it: wall / ideal is their cost."""
    import pandas as pd

    from lrstudy import inputs, losses
    from lrstudy.evaluation import evaluate

    runs = results.parent / layout.RUNS_FOLDER
    records = [json.loads(p.read_text()) for p in runs.glob(layout.RECORD_GLOB)]
    evals = pd.concat(pd.read_csv(p) for p in results.glob("runs/*/seed*/evals.csv"))
    # the first scheduled run's batch size and optimizer as it resolved them (no `auto` left)
    record = next(r for r in records if "scheduler" in r["spec"])
    spec = Spec.from_dict({**record["spec"], "optimizer": record["optimizer"]})
    prepared = data.load_prepared(next(results.glob("data/*.pt")), "cpu")
    x, y = prepared["train"]
    classes = prepared["meta"]["num_classes"]
    per_step = plain_seconds(x, y, classes, spec, sample_steps, warmup=20) / sample_steps
    model = models.LeNet5(x.shape[1], classes).eval()
    subset = (spec.range_test or RangeTest()).valid_subset
    sizes = {"valid": None, "test": None, "range_valid": subset}
    loss_sum = losses.batch_sum("cross_entropy")
    per_eval = {}
    for split, size in sizes.items():
        times = []
        for _ in range(3):
            started = time.perf_counter()
            name = "valid" if split == "range_valid" else split
            evaluate(model, inputs.eval_batches(prepared, name, size, "cpu"), loss_sum)
            times.append(time.perf_counter() - started)
        per_eval[split] = statistics.median(times)
    counts = evals["split"].value_counts().to_dict()
    steps = sum(r["steps"] for r in records)
    work = steps * per_step + sum(n * per_eval[split] for split, n in counts.items())
    return {
        "training_steps": steps,
        "evaluations": counts,
        "plain_s_per_step": per_step,
        "eval_s": per_eval,
        "cores": cores,
        "ideal_s": work / cores,
    }


# --------------------------------------------------------------------------------------- the bench
def bench(args) -> dict:
    torch.set_num_threads(args.threads)
    base = rule_spec(args.config, args.run, args.device, args.threads)
    measured = base.replace(eval_every=NEVER, checkpoint_every=0, tensorboard=False)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    report = {"machine": machine(), "settings": settings, "spec": base.to_dict()}
    report["loadavg_before"] = list(os.getloadavg())

    with tempfile.TemporaryDirectory(prefix="lrstudy-bench-") as tmp:
        work = Path(tmp)
        data_path = work / "digits.pt"
        data.prepare(base_dataset(args.config), data_path, work / "digits.json")
        prepared = torch.load(data_path, weights_only=True)
        meta = prepared["meta"]
        mnist_root = write_mnist(work / "mnist", prepared)
        x, y = data.load_prepared(data_path, "cpu")["train"]
        report["dataset"] = {"name": meta["dataset"], "train_samples": len(x)}
        setup = Setup(args, x, y, meta, data_path, work)

        plans = {}
        for batch in args.batch_sizes:
            steps_per_epoch = len(x) // batch
            extra = max(1, round(args.steps / steps_per_epoch))  # epochs timed after the first
            plans[batch] = Plan(
                batch,
                measured.replace(batch_size=batch),
                base.replace(batch_size=batch),
                extra,
                extra * steps_per_epoch - 1,  # what steady_seconds times: every kind times as many
                source_loader(mnist_root, meta, batch),
            )
        report["results"] = measure_steps(setup, plans)
        report["startup"] = measure_startup(setup, base)
        if args.ranks if args.ranks is not None else not args.tiny:
            report["ranks"] = measure_ranks(setup, measured)
    if args.study if args.study is not None else not args.tiny:
        report["study"] = measure_study(args.study_cores)
    report["loadavg_after"] = list(os.getloadavg())
    report["ratios"] = ratios(report)
    report["targets"] = targets(report)
    return report


def base_dataset(config_path: Path) -> dict:
    import yaml

    dataset = yaml.safe_load(config_path.read_text())["dataset"]
    if dataset.get("name", "digits") != "digits":
        print(
            f"note: the bench always uses the bundled digits (config names {dataset['name']!r})",
            file=sys.stderr,
        )
    return {
        "name": "digits",
        "valid_fraction": dataset.get("valid_fraction", 0.1),
        "test_fraction": dataset.get("test_fraction", 0.2),
        "split_seed": dataset.get("split_seed", 0),
    }


def paired(rows: dict, top: str, bottom: str, key: str) -> float:
    """Median over rounds of the per-round ratio top/bottom: each round's two measurements ran next
    to each other in time, so a burst of load from other processes hits both."""
    a, b = rows[top][key], rows[bottom][key]
    return statistics.median(x / y for x, y in zip(a, b))


def ratios(report: dict) -> dict:
    out = {"b_over_a": {}, "c_over_b": {}, "input_speedup": {}, "configured_over_b": {}}
    for batch, r in report["results"].items():
        out["b_over_a"][batch] = paired(r, "ours", "plain", "repeats_ms_per_step")
        # c/b in ms/step = b/c in samples/s
        out["c_over_b"][batch] = paired(r, "loader", "ours", "repeats_ms_per_step")
        out["input_speedup"][batch] = paired(r, "mem_input", "dl_input", "repeats_samples_per_s")
        out["configured_over_b"][batch] = paired(r, "configured", "ours", "repeats_ms_per_step")
    return out


def _target(value: float, comparison: str, limit: float) -> dict:
    met = value <= limit if comparison == "<=" else value >= limit
    return {"value": value, "target": f"{comparison} {limit}", "met": met}


def targets(report: dict) -> dict:
    """Each of TARGETS at each batch size, and STARTUP_TARGET."""
    out = {}
    for name, comparison, limit, _ in TARGETS:
        for batch, value in report["ratios"][name].items():
            out[f"{name}@{batch}"] = _target(value, comparison, limit)
    name, comparison, limit, _ = STARTUP_TARGET
    out[name] = _target(report["startup"]["extra_s"], comparison, limit)
    return out


# ------------------------------------------------------------------------------------------ output
def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


LABELS = {
    "plain": "(a) plain PyTorch loop",
    "ours": "(b) lrstudy.train (Booster)",
    "loader": "(c) train + MNIST DataLoader",
    "configured": "(b') train, evals+ckpt as config",
    "mem_input": "in-memory input alone",
    "dl_input": "DataLoader input alone",
}


def table(report: dict) -> str:
    settings, cpu = report["settings"], report["machine"]
    lines = [
        f"{cpu['cpu_model']}, {cpu['cpus']} CPUs, torch threads {settings['threads']}, "
        f"median of {settings['repeats']} interleaved rounds",
        "",
        f"{'measurement':34} {'batch':>5} {'ms/step':>9} {'samples/s':>11}   "
        "repeats (ms/step or samples/s)",
    ]
    for batch, r in report["results"].items():
        for kind in KINDS:
            row, name = r[kind], f"{LABELS[kind]:34} {batch:>5}"
            if kind.endswith("_input"):
                reps = ", ".join(f"{v:.0f}" for v in row["repeats_samples_per_s"])
                lines.append(
                    f"{name} {row['ms_per_batch']:>9.3f} {row['samples_per_s']:>11.0f}"
                    f"   {reps}  (ms/batch)"
                )
            else:
                reps = ", ".join(f"{v:.3f}" for v in row["repeats_ms_per_step"])
                lines.append(
                    f"{name} {row['ms_per_step']:>9.3f} {row['samples_per_s']:>11.0f}   {reps}"
                )
        lines.append("")
    if "ranks" in report:
        ranks = report["ranks"]
        for procs in (1, 2):
            p = ranks[f"procs{procs}"]
            label = f"train procs={procs} ({p['plugin'].split()[0]})"
            lines.append(
                f"{label:34} {ranks['batch_size']:>5} {p['ms_per_step']:>9.3f} "
                f"{p['samples_per_s']:>11.0f}   one run of {p['steps']} steps "
                "(subprocess)"
            )
        lines.append("")
    if "study" in report:
        study = report["study"]
        ideal = study["ideal"]
        lines += [
            f"default study ({study['command']}, {study['config']}, empty results/): "
            f"{study['wall_s']:.1f} s wall time",
            f"  ideal: its {ideal['training_steps']} training steps and "
            f"{sum(ideal['evaluations'].values())} evaluations in a plain PyTorch loop / "
            f"{ideal['cores']} cores = {ideal['ideal_s']:.1f} s; "
            f"study / ideal = {study['wall_over_ideal']:.2f}",
            "",
        ]
    ratio = report["ratios"]
    lines.append("other ratios (medians of per-round ratios)")
    for batch in report["results"]:
        lines.append(
            f"  b'/b evals+checkpoints as configured / none   batch {batch:>4}: "
            f"{ratio['configured_over_b'][batch]:.3f}"
        )
    if "ranks" in report:
        ranks = report["ranks"]
        lines.append(
            f"  procs=2 / procs=1, ms/step (one run each)     batch "
            f"{ranks['batch_size']:>4}: {ranks['procs2_over_procs1']:.2f}"
        )
    lines += ["", "target ratios (medians of per-round ratios)"]
    for name, comparison, limit, label in TARGETS:
        for batch in report["results"]:
            met = _met(report, f"{name}@{batch}")
            lines.append(
                f"  {label:62} batch {batch:>4}: {ratio[name][batch]:.3f}"
                f"  (target {comparison} {limit:g}) {met}"
            )
    s = report["startup"]
    runs = ", ".join(f"{v:.2f}" for v in s["ours_runs_s"])
    floors = ", ".join(f"{v:.2f}" for v in s["floor_runs_s"])
    name, comparison, limit, _ = STARTUP_TARGET
    lines.append(
        f"start-up to first step: ours {s['ours_s']:.2f} s ({runs}), floor {s['floor_s']:.2f} s "
        f"({floors}), ours - floor {s['extra_s']:+.2f} s (target {comparison} +{limit:g} s) "
        f"{_met(report, name)}"
    )
    return "\n".join(lines)


def _met(report: dict, key: str) -> str:
    return "met" if report["targets"][key]["met"] else "MISSED"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--steps",
        type=int,
        default=200,
        help="training steps measured per repeat and batch size (rounded to whole epochs)",
    )
    add(
        "--repeats",
        type=int,
        default=5,
        help="interleaved rounds; the median is reported (at least 3 outside --tiny)",
    )
    add("--startup-repeats", type=int, default=3)
    add("--threads", type=int, default=1, help="torch.set_num_threads for every measurement")
    add("--batch-sizes", type=int, nargs="+", default=[32, 128])
    add(
        "--min-input-seconds",
        type=float,
        default=0.2,
        help="shortest timing of an input path alone",
    )
    add(
        "--ranks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time train at procs=2 vs procs=1 (default: on, off with --tiny)",
    )
    add(
        "--study",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time the default study, `snakemake --cores N` from an empty results/ in a "
        "temporary copy of the workflow (minutes; default: on, off with --tiny)",
    )
    add("--study-cores", type=int, default=4, help="--cores of the timed study")
    add("--config", type=Path, default=REPO / "config" / "config.yaml")
    add("--run", help="the config run whose spec is benchmarked (default: the first scheduled run)")
    add(
        "--device",
        default="cpu",
        help="device of the training runs (the plain loop and the input paths alone: the CPU)",
    )
    add(
        "--tiny",
        action="store_true",
        help="a few steps, one repeat, one start-up: proves the bench runs (for the test)",
    )
    add("--out", type=Path, default=Path("results/bench/bench.json"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.repeats, args.startup_repeats, args.min_input_seconds = 20, 1, 1, 0.0
    elif args.repeats < 3 or args.startup_repeats < 3:
        parser.error(
            "--repeats and --startup-repeats must be at least 3 (medians of 3 or more); "
            "use --tiny for a smoke run"
        )
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    report = bench(args)
    io.write_json(args.out, report)
    print(table(report))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
