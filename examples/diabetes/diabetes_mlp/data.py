"""The data factory: scikit-learn's bundled diabetes data (442 patients, 10 features, a float
target: disease progression after one year; no download), split into train/valid/test; features
and target standardised with the training split's statistics, so the loss is in units of the
target's variance (predicting the training mean scores about 1)."""

import numpy as np
import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset


def splits(valid_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> dict:
    """{"train", "valid", "test"}: TensorDatasets of (10 float features, float target)."""
    x, y = load_diabetes(return_X_y=True)
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=test_fraction, random_state=seed)
    train, valid = train_test_split(
        rest, test_size=valid_fraction / (1 - test_fraction), random_state=seed
    )
    x_mean, x_std = x[train].mean(0), x[train].std(0)
    y_mean, y_std = y[train].mean(), y[train].std()

    def part(rows):
        features = torch.tensor((x[rows] - x_mean) / x_std, dtype=torch.float32)
        return TensorDataset(
            features, torch.tensor((y[rows] - y_mean) / y_std, dtype=torch.float32)
        )

    return {"train": part(train), "valid": part(valid), "test": part(test)}
