"""A factory's data reach the loop through the DataLoader as they do from memory: the same samples
in the same batches, each rank its share; a regression run that predicts no better than the
training mean is `collapsed`."""

import pytest
import torch
from torch.utils.data import TensorDataset

from lrstudy import inputs, train


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_the_dataloader_draws_the_batches_memory_does(world, num_workers):
    x = torch.arange(50 * 3, dtype=torch.float32).reshape(50, 3)
    y = torch.arange(50) % 4
    spec = {"seed": 7, "batch_size": 8, "data": {"task": "classification",
            "num_workers": num_workers}}  # fmt: skip
    for rank in range(world):
        runtime = train.Runtime("cpu", rank, world)
        for epoch in (0, 1):
            memory = list(train.shuffled_batches(x, y, spec, epoch, runtime))
            loaded = list(inputs.loader_batches(TensorDataset(x, y), None, spec, epoch, runtime))
            assert len(loaded) == len(memory) == 50 // 8
            for (xm, ym), (xl, yl) in zip(memory, loaded):
                assert torch.equal(xm, xl) and torch.equal(ym, yl)
                assert len(ym) == 8 // world


def evals(*losses):
    return [{"split": "valid", "loss": loss, "accuracy": None} for loss in losses]


def test_a_regression_run_no_better_than_the_mean_is_collapsed():
    assert train.collapsed(evals(2.0, 1.0), None, baseline=1.0)
    assert train.collapsed(evals(0.5, 1.5), None, baseline=1.0)
    assert not train.collapsed(evals(2.0, 0.9), None, baseline=1.0)
    assert not train.collapsed([], None, baseline=1.0)


def test_the_mean_baseline_is_the_loss_of_predicting_the_training_mean():
    from lrstudy import losses

    valid_y = torch.tensor([0.0, 2.0, 4.0])
    dataset = {
        "meta": {"target_mean": 1.0, "task": "regression"},
        "valid": (torch.zeros(3, 2), valid_y),
    }
    baseline = train.mean_baseline(dataset, losses.batch_sum("mse"), "cpu")
    assert baseline == pytest.approx(((0 - 1) ** 2 + (2 - 1) ** 2 + (4 - 1) ** 2) / 3)
