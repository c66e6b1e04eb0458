"""A data factory's splits on their way to the training loop: in memory or through a DataLoader.

`prepare` (the prepare_data rule, through `python -m lrstudy.data`) calls the factory once and
writes the prepared file: every split as tensors when they fit `dataset.memory_limit_mb` (or
`loader: memory`), else only what the jobs need to know (`loader: dataloader`): then each job calls
the factory itself and reads the splits through a seeded DataLoader. Both paths give a batch the
same samples in the same order: the permutation of `shuffled_batches`, a function of (seed, epoch)
alone, so a resumed run sees the batches it would have seen. `run_length` is how many of them a
run trains on.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from lrstudy import factories
from lrstudy.io import atomic_path, write_json
from lrstudy.spec import Spec

EVAL_BATCH = 1024


def estimate_mb(splits: dict) -> float:
    """The splits' size as tensors, from the first sample of each."""
    total = 0
    for name, split in splits.items():
        x, y = factories.pair(split, 0, name)
        total += len(split) * (x.numel() * x.element_size() + y.numel() * 8)
    return total / 2**20


def stacked(split, name: str, task: str):
    items = [factories.pair(split, i, name) for i in range(len(split))]
    return factories.cast(
        torch.stack([x for x, _ in items]), torch.stack([y for _, y in items]), task
    )


def target_mean(split, task: str) -> list | None:
    """The training targets' mean (regression): the prediction `collapsed` compares with."""
    if task != "regression":
        return None
    return factories.all_targets(split, "train").to(torch.float64).mean(0).tolist()


def prepare(dataset: dict, out: Path, manifest_path: Path, python_path=()) -> dict:
    """The prepared file and manifest of a factory's data; returns the manifest."""
    factories.put_on_path(python_path)
    torch.manual_seed(0)
    splits = factories.load_splits(dataset)
    facts = factories.describe(dataset, splits)
    size_mb = estimate_mb(splits)
    loader = dataset.get("loader", "auto")
    if loader == "auto":
        loader = "memory" if size_mb <= dataset.get("memory_limit_mb", 2048) else "dataloader"
    meta = {
        "dataset": factories.dataset_name(dataset),
        "kind": "factory",
        "loader": loader,
        **facts,
        "image_shape": facts["input_shape"],  # the built-in datasets' name for it
        "target_mean": target_mean(splits["train"], facts["task"]),
        "sizes": {s: len(split) for s, split in splits.items()},
        "code": factories.provenance({"dataset": dataset, "python_path": python_path}),
    }
    payload = {"meta": meta}
    if loader == "memory":
        for name, split in splits.items():
            x, y = stacked(split, name, facts["task"])
            payload[name] = {"x": x.contiguous(), "y": y.contiguous()}
    manifest = {**meta, "config": dataset, "size_mb": round(size_mb, 3)}
    manifest["fingerprint"] = fingerprint(payload)  # what a job checks the file against
    if facts["task"] == "classification" and loader == "memory":
        manifest["class_counts"] = {
            s: torch.bincount(payload[s]["y"], minlength=facts["num_classes"]).tolist()
            for s in splits
        }
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    write_json(manifest_path, manifest)
    return manifest


def load(path: Path, spec: Spec, device) -> dict:
    """A prepared file for a job: {split: (x, y)} on `device` (in memory), or {split: (Dataset,
    None)} with "loader" set; plus "meta" and the data's "fingerprint"."""
    from lrstudy import data

    payload = data.read_prepared(Path(path))  # torch's safe loader; a file that fails is named
    meta = payload["meta"]
    if meta.get("kind") != "factory":
        return data.load_prepared(path, device, payload)
    out = {"meta": meta, "fingerprint": fingerprint(payload)}
    data.check_manifest(Path(path), out["fingerprint"])
    if meta["loader"] == "memory":
        for split in factories.SPLITS:
            out[split] = (payload[split]["x"].to(device), payload[split]["y"].to(device))
        return out
    factories.put_on_path(spec.python_path)
    torch.manual_seed(0)  # as at prepare time
    splits = factories.load_splits(spec.data)
    sizes = {s: len(split) for s, split in splits.items()}
    if sizes != meta["sizes"]:
        raise SystemExit(f"the data factory's splits changed since {path} was prepared: {sizes}")
    for split in factories.SPLITS:
        out[split] = (splits[split], None)
    out["loader"] = True
    return out


def fingerprint(payload: dict) -> str:
    """A hash of the data (tensors, or the data factory's source with its sizes)."""
    digest = hashlib.sha256(json.dumps(payload["meta"], sort_keys=True).encode())
    for split in factories.SPLITS:
        if split in payload:
            for key in ("x", "y"):
                digest.update(payload[split][key].contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------- the batches
@dataclass
class Length:
    steps_per_epoch: int
    epochs: int
    total_steps: int


def run_length(spec: Spec, train_size: int) -> Length:
    """Full batches only (the last partial one is dropped), so every rank gets batch_size / world.
    A range test may set its own step count; otherwise a run lasts `epochs` epochs."""
    steps_per_epoch = train_size // spec.batch_size
    if steps_per_epoch == 0:
        raise SystemExit(f"batch_size {spec.batch_size} exceeds the {train_size} training samples")
    test = spec.range_test
    total = test.steps if test and test.steps else steps_per_epoch * spec.epochs
    return Length(steps_per_epoch, math.ceil(total / steps_per_epoch), total)


def shuffled_batches(x, y, spec: Spec, epoch: int, runtime):
    """One epoch of (inputs, labels) batches: each rank's share of every global batch.

    The order depends only on (seed, epoch), so a resumed run sees the same batches. This is the
    one way input reaches the loop: another input path (the benchmark's DataLoader) is another
    function of the same signature, passed to `train(batches=...)`.
    """
    batch, local = spec.batch_size, spec.batch_size // runtime.world
    generator = torch.Generator().manual_seed(spec.seed * 100003 + epoch)
    order = torch.randperm(len(x), generator=generator).to(x.device)
    for start in range(0, len(x) - batch + 1, batch):
        index = order[start : start + batch][runtime.rank * local : (runtime.rank + 1) * local]
        yield x[index], y[index]


def order(size: int, spec: Spec, epoch: int) -> torch.Tensor:
    """The epoch's permutation of the training samples: a function of (seed, epoch) alone."""
    generator = torch.Generator().manual_seed(spec.seed * 100003 + epoch)
    return torch.randperm(size, generator=generator)


def loader_batches(split, _unused, spec: Spec, epoch: int, runtime):
    """shuffled_batches through a DataLoader: the same (seed, epoch) permutation,
    this rank's share of each full global batch, `num_workers` workers seeded from it."""
    from torch.utils.data import DataLoader

    data = spec.data
    batch, local = spec.batch_size, spec.batch_size // runtime.world
    permutation = order(len(split), spec, epoch).tolist()
    indices = [
        permutation[start : start + batch][runtime.rank * local : (runtime.rank + 1) * local]
        for start in range(0, len(split) - batch + 1, batch)
    ]
    loader = DataLoader(
        split,
        batch_sampler=indices,
        num_workers=data.get("num_workers") or 0,
        pin_memory=bool(data.get("pin_memory")) and runtime.cuda,
        generator=torch.Generator().manual_seed(spec.seed * 100003 + epoch),
    )
    for x, y in loader:
        yield to_device(x, y, data["task"], runtime.device)


def to_device(x, y, task: str, device):
    x, y = factories.cast(torch.as_tensor(x), torch.as_tensor(y), task)
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def eval_batches(dataset: dict, split: str, size: int | None, device):
    """A split (its first `size` samples) in evaluation batches on `device`."""
    x, y = dataset[split]
    if not dataset.get("loader"):
        x, y = x[:size], y[:size]
        for i in range(0, len(x), EVAL_BATCH):
            yield x[i : i + EVAL_BATCH], y[i : i + EVAL_BATCH]
        return
    from torch.utils.data import DataLoader, Subset

    subset = x if size is None else Subset(x, range(min(size, len(x))))
    for xb, yb in DataLoader(subset, batch_size=EVAL_BATCH, shuffle=False):
        yield to_device(xb, yb, dataset["meta"]["task"], device)
