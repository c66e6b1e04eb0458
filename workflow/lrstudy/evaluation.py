"""What a training run measures besides its training loss: the splits' loss and accuracy, the
loss of a model that learned nothing (chance), and whether a run collapsed."""

from __future__ import annotations

import torch

from lrstudy import inputs, losses
from lrstudy.spec import Spec

# A scheduled classification run whose final valid accuracy is at most this many times chance
# never learned (a regression run: its final valid loss is no better than the mean's).
CHANCE_FACTOR = 1.5


def data_facts(meta: dict) -> dict:
    """The task, classes and shapes of the prepared data (the built-in datasets: 10 classes)."""
    return {
        "task": meta.get("task", "classification"),
        "num_classes": meta.get("num_classes"),
        "input_shape": meta.get("input_shape", meta["image_shape"]),
        "target_shape": meta.get("target_shape", []),
    }


def loss_name(spec: Spec, meta: dict) -> str:
    return losses.resolve(spec.loss, data_facts(meta)["task"])


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


@torch.inference_mode()
def chance_levels(dataset: dict, loss_sum_fn, device) -> dict:
    """{split: {loss, accuracy}} of a model that learned nothing but the training split's
    targets: classification predicts the training class frequencies (logits = their log; the
    accuracy is the training majority class's share), regression the training targets' mean
    (accuracy None). The verdict scores a failed seed no better than this (lrstudy.decision)."""
    classification = data_facts(dataset["meta"])["task"] == "classification"
    if classification:
        labels = torch.cat([y for _, y in inputs.eval_batches(dataset, "train", None, device)])
        counts = torch.bincount(labels, minlength=data_facts(dataset["meta"])["num_classes"])
        constant = torch.log(counts.double().clamp(min=0.5) / counts.sum()).float()
    else:
        constant = torch.as_tensor(dataset["meta"]["target_mean"], dtype=torch.float32)
    constant = constant.to(device)
    out = {}
    for split in ("valid", "test"):
        total, hits, count = 0.0, 0, 0
        for _, y in inputs.eval_batches(dataset, split, None, device):
            shape = (len(y), *constant.shape) if classification else y.shape
            total += loss_sum_fn(constant.expand(shape), y).item()
            hits += int((y == constant.argmax()).sum()) if classification else 0
            count += len(y)
        accuracy = hits / count if classification else None
        baseline = None if classification else total / count  # what `collapsed` compares with
        out[split] = {"loss": total / count, "accuracy": accuracy, "baseline": baseline}
    return out
