"""The training job: it learns, every configured optimizer steps, multi-rank and TensorBoard
work."""

import json
import pickle
import re
import subprocess
import tarfile

import numpy as np
import pandas as pd
import pytest

from lrstudy import data, optimizers, train
from lrstudy.spec import run_spec

from .util import default_config


def short_spec(run="step", **changes):
    config = default_config()
    config.update(epochs=3, eval_every=40, checkpoint_every=0)
    config.update(changes)
    return run_spec(config, run, 0)


def valid_losses(folder):
    evals = pd.read_csv(folder / "evals.csv")
    return evals[evals["split"] == "valid"].sort_values("step")["loss"].to_numpy()


def test_short_training_lowers_valid_loss(digits_data, tmp_path):
    result = train.train(short_spec(), digits_data, tmp_path)
    losses = valid_losses(tmp_path)
    assert result["status"] == "completed" and result["steps"] == 3 * (1293 // 32)
    assert losses[-1] < 0.5 * losses[0]  # from ~2.30 (chance) to well below
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["plugin"].startswith("none") and run["world_size"] == 1 and run["device"] == "cpu"
    assert run["versions"]["colossalai"] == "0.5.0" and run["versions"]["torch"].startswith("2.5.1")
    assert run["scheduler"] == {
        "class": "StepLR",
        "kwargs": {"step_size": 100, "gamma": 0.5},
        "config_kwargs": {"step_size": 100, "gamma": 0.5},
    }
    assert not list(tmp_path.glob("ckpt-*")) and not (tmp_path / "LATEST").exists()


OPTIMIZERS = {
    "SGD": {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    "Adam": {"lr": 0.002},
    "AdamW": {"lr": 0.002, "weight_decay": 0.01},
    "RAdam": {"lr": 0.002},
    "LAMB": {"lr": 0.01, "weight_decay": 0.01},
    "LARS": {"lr": 1.0, "momentum": 0.9},
}


# The class each config name must build (module.qualname), written out here, not taken from lrstudy.
CLASSES = {
    "SGD": "torch.optim.sgd.SGD",
    "Adam": "torch.optim.adam.Adam",
    "AdamW": "torch.optim.adamw.AdamW",
    "RAdam": "torch.optim.radam.RAdam",
    "LAMB": "colossalai.nn.optimizer.lamb.Lamb",
    "LARS": "colossalai.nn.optimizer.lars.Lars",
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_trains_lenet5_on_cpu(name, digits_data, tmp_path, monkeypatch):
    """The job builds the named class with the configured kwargs (LAMB and LARS from colossalai),
    and it learns."""
    built = []
    original = optimizers.build_optimizer
    monkeypatch.setattr(
        optimizers, "build_optimizer", lambda *a, **k: built.append(original(*a, **k)) or built[-1]
    )
    spec = short_spec(optimizer={"name": name, "kwargs": OPTIMIZERS[name]}, epochs=2)
    result = train.train(spec, digits_data, tmp_path)
    losses = valid_losses(tmp_path)
    assert result["status"] == "completed" and result["optimizer"]["name"] == name
    assert (
        len(built) == 1
        and f"{type(built[0]).__module__}.{type(built[0]).__qualname__}" == CLASSES[name]
    )
    group = built[0].param_groups[0]
    for key, value in OPTIMIZERS[name].items():
        assert group["initial_lr" if key == "lr" else key] == value, key
    assert losses[-1] < losses[0]


def test_tensorboard_event_files_load(digits_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train.train(short_spec(tensorboard=True, epochs=1), digits_data, tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "lr",
        "train/loss",
        "valid/loss",
        "valid/accuracy",
        "test/loss",
        "test/accuracy",
    } <= tags
    steps = pd.read_csv(tmp_path / "steps.csv")
    assert [e.value for e in events.Scalars("lr")] == pytest.approx(steps["lr"].tolist(), rel=1e-6)


LOSS_RTOL = 1e-3  # 2 ranks sum the same samples' gradients in another order: float rounding only


@pytest.mark.slow
def test_two_gloo_ranks_train_like_one_rank_on_the_same_global_batch(
    trainer, digits_data, tmp_path
):
    """2 CPU ranks (torchrun, gloo, batch 16 each) against 1 rank (batch 32): the same LR at every
    step, and the same train loss up to float rounding (relative LOSS_RTOL)."""
    spec = short_spec(procs=2, epochs=2, device="cpu")
    out = tmp_path / "run"
    cmd = trainer.command(spec, out)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and run["plugin"] == "TorchDDPPlugin"
    steps = pd.read_csv(out / "steps.csv")
    assert steps["step"].tolist() == list(range(2 * (1293 // 32)))  # one row per step, written once
    one = tmp_path / "one"
    train.train(spec.replace(procs=1), digits_data, one)
    ref = pd.read_csv(one / "steps.csv")
    assert steps["lr"].tolist() == pytest.approx(ref["lr"].tolist(), rel=1e-12)
    assert steps["train_loss"].tolist() == pytest.approx(ref["train_loss"].tolist(), rel=LOSS_RTOL)
    assert valid_losses(out) == pytest.approx(valid_losses(one), rel=LOSS_RTOL)


def write_cifar(path, n_train=200, n_test=50, seed=0):
    """A CIFAR-10 python-version tarball in the real layout: every image the same random one, the
    labels 0-9 in turn (each class as often)."""
    image = np.random.default_rng(seed).integers(0, 256, (1, 3072), dtype=np.uint8)
    with tarfile.open(path, "w:gz") as tar:
        for name, n in [(f"data_batch_{i}", n_train // 5) for i in range(1, 6)] + [
            ("test_batch", n_test)
        ]:
            blob = pickle.dumps(
                {
                    "data": np.repeat(image, n, axis=0),
                    "labels": (np.arange(n) % 10).tolist(),
                }
            )
            member = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            member.size = len(blob)
            import io

            tar.addfile(member, io.BytesIO(blob))


@pytest.mark.slow
def test_cifar10_resnet18_prepares_and_trains(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_cifar(raw / "cifar-10-python.tar.gz")
    dataset = {
        **default_config()["dataset"],
        "name": "cifar10",
        "valid_fraction": 0.1,
        "data_dir": str(raw),
        "verify_md5": False,
    }
    manifest = data.prepare(dataset, tmp_path / "c.pt", tmp_path / "c.json")
    assert manifest["sizes"] == {"train": 180, "valid": 20, "test": 50} and manifest[
        "image_shape"
    ] == [3, 32, 32]
    spec = short_spec(model="resnet18", epochs=1, batch_size=32, eval_every=2)
    result = train.train(spec.replace(dataset="cifar10"), tmp_path / "c.pt", tmp_path / "run")
    # One image for every label: the model answers one class for all 20 valid images (2 of each
    # class, the split is stratified), so its final valid accuracy is 2 / 20 = 0.1, at most 1.5x
    # chance (0.15): the run collapsed, whatever the weights and on any CPU.
    assert result["status"] == "collapsed" and result["steps"] == 180 // 32
    evals = pd.read_csv(tmp_path / "run" / "evals.csv")
    assert evals[evals["split"] == "valid"]["accuracy"].tolist()[-1] == 2 / 20
    assert np.isfinite(valid_losses(tmp_path / "run")).all()
    with pytest.raises(data.DatasetError, match="checksum mismatch.*cifar-10-python.tar.gz"):
        data.fetch({**dataset, "verify_md5": True}, raw)


def test_range_test_in_validation_loss_mode_records_and_uses_valid_loss(digits_data, tmp_path):
    from lrstudy import rangetest

    config = default_config()
    config.update(epochs=8, eval_every=80, checkpoint_every=0)
    config["runs"]["range_test"]["range_test"].update(
        start_lr=1e-2, valid_every=5, valid_subset=100, stop_factor=None
    )
    train.train(run_spec(config, "range_test", 0), digits_data, tmp_path)
    evals = pd.read_csv(tmp_path / "evals.csv")
    subset = evals[evals["split"] == "range_valid"]
    last = (
        pd.read_csv(tmp_path / "steps.csv")["step"].max() + 1
    )  # it may stop early: LR 10 diverges
    assert subset["step"].tolist() == list(range(5, last + 1, 5)) and len(subset) >= 20
    result = rangetest.analyse(tmp_path)
    assert result["source"] == "valid_loss"
    # The suggestions come from the recorded range_valid curve: its LRs (the LR of each eval's
    # step), bias-corrected EMA with beta 0.98 ** 5 (pandas' adjusted ewm is that average), cut at
    # the first non-finite point, the first 10 % and the last ceil(5 / 5) points left out.
    curve = subset.merge(
        pd.read_csv(tmp_path / "steps.csv")[["step", "lr"]], on="step"
    ).sort_values("step")
    finite = np.isfinite(curve["loss"].to_numpy())
    curve = curve.iloc[: int(np.argmin(finite)) if not finite.all() else len(curve)]
    smoothed = curve["loss"].ewm(alpha=1 - 0.98**5, adjust=True).mean().to_numpy()
    lrs = curve["lr"].to_numpy()
    start, end = int(0.1 * len(lrs)), len(lrs) - 1
    at_min = start + int(np.argmin(smoothed[start:end]))
    suggestions = result["suggestions"]
    assert suggestions["minimum"] == pytest.approx(lrs[at_min] / 10, rel=1e-12)
    # steep: the LR of the most negative slope d loss / d log10 LR up to the minimum, by central
    # differences over the points within +-0.15 decades; valley: the middle (in log LR) of the
    # descent from within 5 % of the drop below its top to within 5 % of the drop above the minimum
    x, s, imin = np.log10(lrs[start:end]), smoothed[start:end], at_min - start
    k = max(1, round(0.15 / float(np.median(np.diff(x)))))
    i = np.arange(len(s))
    hi, lo = np.minimum(i + k, len(s) - 1), np.maximum(i - k, 0)
    slope = (s[hi] - s[lo]) / (x[hi] - x[lo])
    assert suggestions["steep"] == lrs[start + int(np.argmin(slope[: imin + 1]))]
    drop = s[: imin + 1].max() - s[imin]
    b = next(j for j in range(imin + 1) if s[j] <= s[imin] + 0.05 * drop)
    a = max(j for j in range(b) if s[j] >= s[:b].max() - 0.05 * drop)
    assert suggestions["valley"] == pytest.approx(10 ** ((x[a] + x[b]) / 2), rel=1e-12)


def test_a_suggestion_without_usable_bounds_stops_the_job_naming_its_file(tmp_path):
    """A range test that found no bounds (or only some) stops the job that needs them, naming the
    suggestion file and the test's status; no file at all means no bounds are needed."""
    assert train.load_bounds(None) is None
    cases = {
        "none.json": {"status": {"reason": "no descent"}, "bounds": None},
        "no_max.json": {"status": "diverged early", "bounds": {"max_lr": None, "base_lr": 0.01}},
        "missing.json": {"status": "too few points"},
    }
    for name, suggestion in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(suggestion))
        with pytest.raises(SystemExit, match=rf"^{re.escape(str(path))}: the range test gave no"):
            train.load_bounds(str(path))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"bounds": {"max_lr": 0.1, "base_lr": 0.025}}))
    assert train.load_bounds(str(good)) == {"max_lr": 0.1, "base_lr": 0.025}
