"""The data factory: scikit-learn's bundled Wisconsin breast-cancer data (569 samples, 30
features, 2 classes; no download), split stratified into train/valid/test and standardised with
the training split's statistics."""

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset


def splits(valid_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> dict:
    """{"train", "valid", "test"}: TensorDatasets of (30 float features, integer class)."""
    x, y = load_breast_cancer(return_X_y=True)
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=y, random_state=seed)
    train, valid = train_test_split(
        rest, test_size=valid_fraction / (1 - test_fraction), stratify=y[rest], random_state=seed
    )
    mean, std = x[train].mean(0), x[train].std(0)

    def part(rows):
        features = torch.tensor((x[rows] - mean) / std, dtype=torch.float32)
        return TensorDataset(features, torch.tensor(y[rows], dtype=torch.int64))

    return {"train": part(train), "valid": part(valid), "test": part(test)}
