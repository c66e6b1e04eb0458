"""The user's model, data and loss, named in the config by import path ("package.module:function").

    model:   {factory: "mypkg.nets:build", kwargs: {...}}    -> an nn.Module
    dataset: {factory: "mypkg.data:splits", kwargs: {...}}   -> {"train", "valid", "test"}: Datasets
    loss:    "mypkg.losses:my_loss"                          -> loss(output, target): a scalar

`check` runs at DAG build (lrstudy.config.check): it imports every factory, calls the data factory,
builds the model and runs it on a small batch of the training data, so a wrong path, a missing
attribute, a factory that raises, the wrong return type, a missing split or an output that does
not fit the targets stops the run before any job, naming the key. `provenance` is what run.json
records of the code: each factory's module file, the SHA-256 of its source and its git commit.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

SPLITS = ("train", "valid", "test")
TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
# What the workflow passes to a model factory whose signature names them (unless kwargs set them).
OFFERED = ("input_shape", "num_outputs")
BATCH = 4  # samples of the training split the model is tried on at DAG build


class FactoryError(ValueError):
    """A factory failed a check; `key` is the config key that names it."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def is_factory(entry) -> bool:
    return isinstance(entry, Mapping) and "factory" in entry


# ------------------------------------------------------------------------- import and call
def put_on_path(folders) -> None:
    """`python_path` first on sys.path, in order (already absolute: lrstudy.config resolves it)."""
    for folder in reversed(list(folders or ())):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    importlib.invalidate_caches()


def load(target: str, key: str):
    """The callable `target` ("package.module:function") names."""
    if not isinstance(target, str) or not TARGET.match(target):
        raise FactoryError(key, f"{target!r} is not of the form 'package.module:function'")
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise FactoryError(
            key,
            f"cannot import module {module_name!r} ({error}); is its folder in `python_path`? "
            f"(the import path starts {sys.path[:3]})",
        ) from None
    except Exception as error:
        raise FactoryError(
            key, f"importing {module_name!r} raised {type(error).__name__}: {error}"
        ) from None
    found = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise FactoryError(
                key, f"module {module_name!r} ({module.__file__}) has no attribute {attribute!r}"
            )
        found = getattr(found, part)
    if not callable(found):
        raise FactoryError(key, f"{target} is a {type(found).__name__}, not a function")
    return found


def call(target: str, kwargs: dict, key: str, **offered):
    """target(**kwargs), plus each of `offered` that its signature names and kwargs leave out."""
    function = load(target, key)
    try:
        names = inspect.signature(function).parameters
    except (TypeError, ValueError):
        names = {}
    extra = {k: v for k, v in offered.items() if k in names and k not in kwargs}
    try:
        return function(**kwargs, **extra)
    except Exception as error:
        raise FactoryError(
            key, f"{target}(**{kwargs!r}) raised {type(error).__name__}: {error}"
        ) from None


# ------------------------------------------------------------------------------------ data
def load_splits(dataset: dict) -> dict:
    """The data factory's {"train", "valid", "test"}, each a non-empty torch Dataset."""
    from torch.utils.data import Dataset

    key = "dataset.factory"
    target = dataset["factory"]
    splits = call(target, dataset.get("kwargs") or {}, key)
    if not isinstance(splits, Mapping):
        raise FactoryError(
            key, f"{target} returned a {type(splits).__name__}, not a mapping of train/valid/test"
        )
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise FactoryError(
            key,
            f"{target} returned no split {', '.join(map(repr, missing))} "
            f"(it has {', '.join(map(repr, splits)) or 'none'}); it must return train, valid, test",
        )
    for split in SPLITS:
        if not isinstance(splits[split], Dataset):
            raise FactoryError(
                key,
                f"split {split!r} is a {type(splits[split]).__name__}, not a torch Dataset",
            )
        if len(splits[split]) == 0:
            raise FactoryError(key, f"split {split!r} is empty")
    return {s: splits[s] for s in SPLITS}


def pair(dataset, index: int, split: str):
    """Sample `index` of a split as (input, target) tensors."""
    import torch

    item = dataset[index]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise FactoryError(
            "dataset.factory",
            f"split {split!r} item {index} is a {type(item).__name__}, not an (input, target) pair",
        )
    return torch.as_tensor(item[0]), torch.as_tensor(item[1])


def is_integer(tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex()) and tensor.dtype.is_signed


def all_targets(dataset, split: str):
    """Every target of a split: a TensorDataset's, a `targets` attribute, else item by item."""
    import torch
    from torch.utils.data import TensorDataset

    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1]
    if hasattr(dataset, "targets"):
        return torch.as_tensor(dataset.targets)
    return torch.stack([pair(dataset, i, split)[1] for i in range(len(dataset))])


def describe(dataset: dict, splits: dict) -> dict:
    """The task, classes, input and target shapes of a factory's data (`dataset.task` and
    `dataset.num_classes` override what the data say)."""
    x, y = pair(splits["train"], 0, "train")
    task = dataset.get("task") or ("classification" if is_integer(y) else "regression")
    facts = {"task": task, "input_shape": list(x.shape), "target_shape": list(y.shape)}
    if task == "regression":
        facts["num_classes"] = None
        return facts
    if not is_integer(y) or y.ndim != 0:
        raise FactoryError(
            "dataset.task",
            f"classification needs one integer class per sample; split 'train' item 0's target "
            f"is {y.dtype} of shape {list(y.shape)} (set `dataset.task: regression`?)",
        )
    count = dataset.get("num_classes")
    if count is None:
        top = max(int(all_targets(splits[s], s).max()) for s in SPLITS)
        count = top + 1
        if count < 2:
            raise FactoryError("dataset.num_classes", f"the targets hold {count} class; need 2+")
    facts["num_classes"] = count
    return facts


def first_batch(splits: dict, task: str):
    """The first BATCH samples of the training split, as the loop will see them."""
    import torch

    items = [pair(splits["train"], i, "train") for i in range(min(BATCH, len(splits["train"])))]
    return cast(torch.stack([x for x, _ in items]), torch.stack([y for _, y in items]), task)


def cast(x, y, task: str):
    """Floating inputs as float32; targets as int64 classes or float32 values."""
    import torch

    if x.is_floating_point():
        x = x.float()
    return x, (y.long() if task == "classification" else y.to(torch.float32))


# ----------------------------------------------------------------------------------- model
def num_outputs(facts: dict) -> int:
    if facts["task"] == "classification":
        return facts["num_classes"]
    width = 1
    for size in facts["target_shape"]:
        width *= size
    return width


def build_model(model, facts: dict):
    """The network: a built-in name (lrstudy.models) or the user's factory, as an nn.Module."""
    from torch import nn

    from lrstudy import models

    if not is_factory(model):
        return models.build(model, facts["input_shape"][0], num_outputs(facts))
    built = call(
        model["factory"],
        model.get("kwargs") or {},
        "model.factory",
        input_shape=tuple(facts["input_shape"]),
        num_outputs=num_outputs(facts),
    )
    if not isinstance(built, nn.Module):
        raise FactoryError(
            "model.factory",
            f"{model['factory']} returned a {type(built).__name__}, not an nn.Module",
        )
    return built


def expected_output(facts: dict, batch: int) -> list[int]:
    if facts["task"] == "classification":
        return [batch, facts["num_classes"]]
    return [batch, *facts["target_shape"]]


def check_model(model, facts: dict, x) -> None:
    """Build the model and run it on the batch `x`: its output must fit the targets."""
    import torch

    key = "model.factory" if is_factory(model) else "model"
    net = build_model(model, facts)
    net.eval()
    try:
        with torch.no_grad():
            output = net(x)
    except Exception as error:
        raise FactoryError(
            key,
            f"the model fails on a batch of the training data (input {list(x.shape)}, "
            f"{x.dtype}): {type(error).__name__}: {error}",
        ) from None
    want = expected_output(facts, len(x))
    if not isinstance(output, torch.Tensor) or list(output.shape) != want:
        shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        what = (
            f"one score per class ({facts['num_classes']} classes)"
            if facts["task"] == "classification"
            else f"the targets' shape {facts['target_shape']} per sample"
        )
        raise FactoryError(
            key,
            f"on a batch of {len(x)} inputs the model returns {shape}; {facts['task']} needs "
            f"{want}: {what}",
        )


# ------------------------------------------------------------------------------ the checks
def builtin_facts(name: str) -> dict:
    """The built-in datasets (lrstudy.data): 10 classes of 32x32 images."""
    channels = 3 if name == "cifar10" else 1
    return {
        "task": "classification",
        "num_classes": 10,
        "input_shape": [channels, 32, 32],
        "target_shape": [],
    }


def check(config) -> dict:
    """Import and call every factory of `config` on a small batch (see the module's doc); returns
    the data's facts (task, num_classes, input and target shape)."""
    import torch

    from lrstudy import losses

    put_on_path(config.get("python_path"))
    dataset = config["dataset"]
    torch.manual_seed(0)  # a factory drawing random numbers draws the same ones at every build
    if is_factory(dataset):
        splits = load_splits(dataset)
        facts = describe(dataset, splits)
        x, y = first_batch(splits, facts["task"])
    else:
        facts = builtin_facts(dataset["name"])
        x = torch.zeros(BATCH, *facts["input_shape"])
        y = torch.zeros(BATCH, dtype=torch.long)
    check_model(config["model"], facts, x)
    name = losses.resolve(config.get("loss", "auto"), facts["task"])
    net_output = torch.zeros(expected_output(facts, len(x)))
    losses.check(name, facts["task"], net_output, y)
    return {**facts, "loss": name}


# ------------------------------------------------------------------------------ provenance
def targets(config_or_spec) -> dict[str, str]:
    """Config key -> import path of every factory a config (or a run's spec) names."""
    found = {}
    model = config_or_spec.get("model")
    if is_factory(model):
        found["model.factory"] = model["factory"]
    dataset = config_or_spec.get("data") or config_or_spec.get("dataset")
    if is_factory(dataset):
        found["dataset.factory"] = dataset["factory"]
    loss = config_or_spec.get("loss")
    if isinstance(loss, str) and ":" in loss:
        found["loss"] = loss
    return found


def source_record(target: str, key: str, git: bool = True) -> dict:
    """The module file `target` comes from, the SHA-256 of its source and, where that file is in
    a git repository, the commit and whether the work tree differs from it."""
    module = sys.modules.get(target.split(":")[0])
    if module is None:
        load(target, key)
        module = sys.modules[target.split(":")[0]]
    path = Path(inspect.getsourcefile(module) or module.__file__).resolve()
    record = {
        "factory": target,
        "module_file": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    if git:
        record.update(git_state(path.parent))
    return record


def git_state(folder: Path) -> dict:
    def git(*args):
        proc = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30
        )
        return proc.stdout.strip() if proc.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.TimeoutExpired):
        commit = None
    if not commit:
        return {"git_commit": None}
    return {"git_commit": commit, "git_dirty": bool(git("status", "--porcelain", "--", "."))}


def provenance(config_or_spec, git: bool = True) -> dict:
    """Config key -> source_record of each factory (imported from `python_path`)."""
    put_on_path(config_or_spec.get("python_path"))
    return {key: source_record(t, key, git) for key, t in targets(config_or_spec).items()}


# ------------------------------------------------------------------------ config resolution
def resolve_python_path(config, configfiles=(), overrides=None) -> None:
    """`python_path` folders as absolute paths, in place: relative to the config file that sets
    the key (the last of `configfiles` that does), or to the working directory when it comes from
    `--config` (`overrides`) or from a config given as a dict. Each must be a folder."""
    folders = config.get("python_path") or []
    base = Path.cwd()
    if "python_path" not in (overrides or {}):
        import yaml

        for path in configfiles or ():
            text = yaml.safe_load(Path(path).read_text()) or {}
            if "python_path" in text:
                base = Path(path).resolve().parent
    resolved = []
    for index, folder in enumerate(folders):
        path = (base / str(folder)).resolve()
        if not path.is_dir():
            raise FactoryError(f"python_path.{index}", f"{folder!r} ({path}) is not a folder")
        resolved.append(str(path))
    config["python_path"] = resolved


def dataset_name(dataset: dict) -> str:
    """The prepared file's name: the built-in dataset's, or the data factory's path."""
    if not is_factory(dataset):
        return dataset["name"]
    return re.sub(r"[^a-z0-9_]", "_", dataset["factory"].lower())
