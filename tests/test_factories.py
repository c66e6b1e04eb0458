"""The user's model, data and loss by import path (lrstudy.factories): every bad factory stops the
DAG build naming its key; the task, classes and loss follow the data; python_path is found
relative to the config file; run.json's code record names the source and its git commit."""

import hashlib
import subprocess
import textwrap
import uuid

import pytest
import yaml

from lrstudy import factories
from lrstudy.config import ConfigError, validate

from .conftest import raw_config, snakemake_cmd
from .util import job_env

N, FEATURES, CLASSES = 40, 5, 3
DATA = f"""
import torch
from torch.utils.data import TensorDataset

def splits(regression=False, drop=None):
    x = torch.linspace(-1, 1, {N * FEATURES}).reshape({N}, {FEATURES})
    y = torch.arange({N}) % {CLASSES}
    if regression:
        y = x.sum(1)
    out = {{s: TensorDataset(x, y) for s in ("train", "valid", "test")}}
    if drop:
        del out[drop]
    return out

def raises():
    raise RuntimeError("no data here")

def a_list():
    return [1, 2, 3]

def lists():
    return {{"train": [(0, 0)], "valid": [(0, 0)], "test": [(0, 0)]}}

class Triples(torch.utils.data.Dataset):
    def __len__(self):
        return 4
    def __getitem__(self, i):
        return torch.zeros(3), 0, "extra"

def triples():
    return {{s: Triples() for s in ("train", "valid", "test")}}
"""
MODEL = """
from torch import nn

def mlp(input_shape, num_outputs):
    return nn.Sequential(nn.Linear(input_shape[0], 8), nn.ReLU(), nn.Linear(8, num_outputs))

class Squeezed(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, 1)
    def forward(self, x):
        return self.linear(x).squeeze(-1)

def regressor(input_shape):
    return Squeezed(input_shape[0])

def seven_outputs(input_shape):
    return nn.Linear(input_shape[0], 7)

def raises(width=3):
    raise ValueError(f"width {width} is not allowed")

def a_string():
    return "not a module"

not_callable = 3
"""
LOSSES = """
def per_sample(output, target):
    return (output - target) ** 2
"""


@pytest.fixture
def package(tmp_path):
    """A package of factories in a folder of its own (a unique name: modules stay imported)."""
    name = f"userpkg_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "code"
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    for module, text in (("data", DATA), ("model", MODEL), ("losses", LOSSES)):
        (folder / name / f"{module}.py").write_text(textwrap.dedent(text))
    return folder, name


def user_config(package, model="mlp", data="splits", **overrides) -> dict:
    folder, name = package
    config = raw_config(
        python_path=[str(folder)],
        model={"factory": f"{name}.model:{model}"},
        dataset={"factory": f"{name}.data:{data}"},
    )
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    return config


def check(config) -> dict:
    validate(config, executor=None)
    return config


def test_a_working_pair_fills_in_the_task_the_classes_and_the_loss(package):
    config = check(user_config(package))
    assert (config["dataset"]["task"], config["dataset"]["num_classes"]) == (
        "classification",
        CLASSES,
    )
    assert config["loss"] == "cross_entropy"
    config = check(
        user_config(package, model="regressor", dataset={"kwargs": {"regression": True}})
    )
    assert (config["dataset"]["task"], config["loss"]) == ("regression", "mse")
    config = check(user_config(package, dataset={"num_classes": 5}))
    assert config["dataset"]["num_classes"] == 5


def test_the_task_can_be_overridden(package):
    """Integer targets read as regression values on request: the model must then give one
    number per sample, which mlp (one per class) does not."""
    with pytest.raises(ConfigError) as error:
        check(user_config(package, dataset={"task": "regression"}))
    assert error.value.key == "model.factory"
    config = check(user_config(package, model="regressor", dataset={"task": "regression"}))
    assert config["loss"] == "mse"


BAD = [
    ("module not found", {"model": {"factory": "no_such_pkg_xyz.model:mlp"}}, "model.factory",
     "cannot import module 'no_such_pkg_xyz.model'"),
    ("attribute missing", {"model": "missing"}, "model.factory", "has no attribute 'missing'"),
    ("not callable", {"model": "not_callable"}, "model.factory", "not a function"),
    ("model factory raises", {"model": "raises"}, "model.factory",
     "raised ValueError: width 3 is not allowed"),
    ("model is not an nn.Module", {"model": "a_string"}, "model.factory",
     "returned a str, not an nn.Module"),
    ("output does not fit the classes", {"model": "seven_outputs"}, "model.factory",
     f"returns [4, 7]; classification needs [4, {CLASSES}]"),
    ("output does not fit regression targets",
     {"model": "mlp", "dataset": {"kwargs": {"regression": True}}}, "model.factory",
     "regression needs [4]"),
    ("a split missing", {"dataset": {"kwargs": {"drop": "valid"}}}, "dataset.factory",
     "no split 'valid'"),
    ("data factory raises", {"data": "raises"}, "dataset.factory",
     "raised RuntimeError: no data here"),
    ("data is not a mapping", {"data": "a_list"}, "dataset.factory", "returned a list"),
    ("a split is not a Dataset", {"data": "lists"}, "dataset.factory",
     "split 'train' is a list, not a torch Dataset"),
    ("items are not pairs", {"data": "triples"}, "dataset.factory",
     "not an (input, target) pair"),
    ("a regression loss on classes", {"loss": "mse"}, "loss", "mse is a regression loss"),
    ("a loss that is not a scalar",
     {"model": "regressor", "dataset": {"kwargs": {"regression": True}}, "loss": "per_sample"},
     "loss", "must return a scalar tensor"),
]  # fmt: skip


@pytest.mark.parametrize("case, change, key, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_factory_stops_the_dag_build_naming_its_key(package, case, change, key, message):
    folder, name = package
    change = dict(change)
    model, data = change.pop("model", "mlp"), change.pop("data", "splits")
    if isinstance(model, dict):
        config = user_config(package, data=data, **change)
        config["model"] = model
    else:
        config = user_config(package, model=model, data=data, **change)
    if config.get("loss") == "per_sample":
        config["loss"] = f"{name}.losses:per_sample"
    with pytest.raises(ConfigError) as error:
        check(config)
    assert error.value.key == key, str(error.value)
    assert message in str(error.value)
    assert str(error.value).startswith(f"config key `{key}`")


def test_a_malformed_import_path_is_refused_by_the_schema(package):
    config = user_config(package)
    config["model"] = {"factory": f"{package[1]}.model.mlp"}  # no ':'
    with pytest.raises(ConfigError) as error:
        check(config)
    assert error.value.key == "model"


def test_python_path_is_relative_to_the_config_file_that_sets_it(package, tmp_path, monkeypatch):
    folder, name = package
    study = tmp_path / "study"
    study.mkdir()
    config = user_config(package)
    config["python_path"] = ["../code"]
    path = study / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cwd = tmp_path / "a" / "b"  # the working directory is not the base: ../code is not there
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    loaded = yaml.safe_load(path.read_text())
    validate(loaded, [path], executor=None)
    assert loaded["python_path"] == [str(folder.resolve())]
    loaded = yaml.safe_load(path.read_text())
    loaded["python_path"] = ["no_such_folder"]
    with pytest.raises(ConfigError) as error:
        validate(loaded, [path], executor=None, overrides={"python_path": ["no_such_folder"]})
    assert error.value.key == "python_path.0"
    assert str(cwd / "no_such_folder") in str(error.value)  # from --config: the working directory


def test_the_code_record_names_the_source_its_hash_and_git_commit(package):
    folder, name = package
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "factories"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    config = check(user_config(package))
    record = factories.provenance(config)
    model_file = folder / name / "model.py"
    assert record["model.factory"]["module_file"] == str(model_file.resolve())
    assert record["model.factory"]["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert record["model.factory"]["git_commit"] == head.strip()
    assert record["model.factory"]["git_dirty"] is False
    assert record["dataset.factory"]["module_file"].endswith(f"{name}/data.py")
    model_file.write_text(model_file.read_text() + "\n# edited\n")
    assert factories.provenance(config)["model.factory"]["git_dirty"] is True


@pytest.mark.slow
def test_snakemake_stops_before_any_job(package, workflow_copy):
    """Through `snakemake`: the error names the key, and nothing ran."""
    config = user_config(package, model="seven_outputs")
    study = workflow_copy(config)
    proc = subprocess.run(
        snakemake_cmd("--cores", "1"), cwd=study, env=job_env(), capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "config key `model.factory`" in proc.stderr + proc.stdout
    assert not (study / "results").exists()
