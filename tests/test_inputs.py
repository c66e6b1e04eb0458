"""A factory's data reach the loop through the DataLoader as they do from memory: the same samples
in the same batches, each rank its share; a regression run that predicts no better than the
training mean is `collapsed`."""

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import TensorDataset

from lrstudy import evaluation, inputs, runtime


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_the_dataloader_draws_the_batches_memory_does(world, num_workers):
    x = torch.arange(50 * 3, dtype=torch.float32).reshape(50, 3)
    y = torch.arange(50) % 4
    data = {"task": "classification", "num_workers": num_workers}
    spec = SimpleNamespace(seed=7, batch_size=8, data=data)  # the fields the batches read
    for rank in range(world):
        where = runtime.Runtime("cpu", rank, world)
        for epoch in (0, 1):
            memory = list(inputs.shuffled_batches(x, y, spec, epoch, where))
            loaded = list(inputs.loader_batches(TensorDataset(x, y), None, spec, epoch, where))
            assert len(loaded) == len(memory) == 50 // 8
            for (xm, ym), (xl, yl) in zip(memory, loaded):
                assert torch.equal(xm, xl) and torch.equal(ym, yl)
                assert len(ym) == 8 // world


def evals(*losses):
    return [{"split": "valid", "loss": loss, "accuracy": None} for loss in losses]


def test_a_regression_run_no_better_than_the_mean_is_collapsed():
    assert evaluation.collapsed(evals(2.0, 1.0), None, baseline=1.0)
    assert evaluation.collapsed(evals(0.5, 1.5), None, baseline=1.0)
    assert not evaluation.collapsed(evals(2.0, 0.9), None, baseline=1.0)
    assert not evaluation.collapsed([], None, baseline=1.0)


def test_the_mean_baseline_is_the_loss_of_predicting_the_training_mean():
    from lrstudy import losses

    valid_y = torch.tensor([0.0, 2.0, 4.0])
    dataset = {
        "meta": {"target_mean": 1.0, "task": "regression", "image_shape": [2]},
        "valid": (torch.zeros(3, 2), valid_y),
        "test": (torch.zeros(2, 2), torch.tensor([1.0, 3.0])),
    }
    chance = evaluation.chance_levels(dataset, losses.batch_sum("mse"), "cpu")
    baseline = chance["valid"]["baseline"]
    assert baseline == pytest.approx(((0 - 1) ** 2 + (2 - 1) ** 2 + (4 - 1) ** 2) / 3)
    assert chance["test"] == {"loss": pytest.approx(2.0), "accuracy": None, "baseline": 2.0}


def test_chance_predicts_the_training_class_frequencies():
    from lrstudy import losses

    dataset = {  # training classes 0, 0, 0, 1: p = (3/4, 1/4, 0 -> 0.5/4 before renormalising)
        "meta": {"task": "classification", "num_classes": 3, "image_shape": [1]},
        "train": (torch.zeros(4, 1), torch.tensor([0, 0, 0, 1])),
        "valid": (torch.zeros(2, 1), torch.tensor([0, 1])),
        "test": (torch.zeros(2, 1), torch.tensor([1, 2])),
    }
    chance = evaluation.chance_levels(dataset, losses.batch_sum("cross_entropy"), "cpu")
    p = torch.tensor([3.0, 1.0, 0.5]) / 4  # log-probabilities up to softmax's normalisation
    p = p / p.sum()
    assert chance["valid"]["accuracy"] == 0.5 and chance["test"]["accuracy"] == 0.0
    expected = -(torch.log(p[1]) + torch.log(p[2])).item() / 2
    assert chance["test"]["loss"] == pytest.approx(expected, rel=1e-6)
    assert chance["test"]["baseline"] is None
