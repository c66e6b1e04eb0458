"""Data preparation: split sizes and class counts, the MNIST reader on real files, checksums."""

import gzip
import shutil

import numpy as np
import pytest
import torch

from lrstudy import data

from .conftest import DIGITS
from .util import SHARED, default_config

MNIST_T10K = SHARED / "data" / "mnist-t10k"
needs_mnist = pytest.mark.skipif(
    not (MNIST_T10K / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=(
        f"the real MNIST test files are not at {MNIST_T10K} "
        "(../shared is only laid out for developers and CI)"
    ),
)
T10K_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # from shared/README.md


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    manifest = data.prepare(DIGITS, folder / "d.pt", folder / "d.json")
    return folder, manifest


def test_digits_splits_are_stratified_and_complete(digits):
    from sklearn.datasets import load_digits

    _, manifest = digits
    per_class = np.bincount(load_digits().target)
    counts = {s: np.array(c) for s, c in manifest["class_counts"].items()}
    assert sum(manifest["sizes"].values()) == 1797
    assert (counts["train"] + counts["valid"] + counts["test"] == per_class).all()
    # 20% of every class to test, then 10% of the rest to valid (rounding: within one sample)
    assert np.abs(counts["test"] - 0.2 * per_class).max() <= 1
    assert np.abs(counts["valid"] - 0.1 * (per_class - counts["test"])).max() <= 1
    assert manifest["sizes"] == {"train": 1293, "valid": 144, "test": 360}
    assert manifest["image_shape"] == [1, 32, 32] and manifest["num_classes"] == 10


def test_normalisation_comes_from_the_train_split_only(digits):
    folder, _ = digits
    loaded = data.load_prepared(folder / "d.pt")
    x_train = loaded["train"][0]
    assert abs(float(x_train.mean())) < 1e-4 and abs(float(x_train.std()) - 1) < 1e-3
    assert abs(float(loaded["test"][0].mean())) > 1e-4  # test pixels were not used for the stats


def test_preparation_is_reproducible(digits, tmp_path):
    folder, _ = digits
    data.prepare(DIGITS, tmp_path / "again.pt", tmp_path / "again.json")
    first, second = (
        torch.load(p, weights_only=True) for p in (folder / "d.pt", tmp_path / "again.pt")
    )
    for split in ("train", "valid", "test"):
        assert torch.equal(first[split]["x"], second[split]["x"]) and torch.equal(
            first[split]["y"], second[split]["y"]
        )


def test_embedded_mnist10k_is_the_default_and_splits_all_ten_thousand(tmp_path):
    dataset = default_config()["dataset"]
    assert dataset["name"] == "mnist10k"
    manifest = data.prepare(dataset, tmp_path / "m.pt", tmp_path / "m.json")
    # the published MD5s and class counts of MNIST's test set (shared/README.md, torchvision)
    assert manifest["sources"] == {
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    counts = {s: np.array(c) for s, c in manifest["class_counts"].items()}
    assert (counts["train"] + counts["valid"] + counts["test"]).tolist() == T10K_CLASS_COUNTS
    assert manifest["sizes"]["valid"] >= 1000 and sum(manifest["sizes"].values()) == 10_000
    assert (
        np.abs(counts["test"] - dataset["test_fraction"] * np.array(T10K_CLASS_COUNTS)).max() <= 1
    )


def test_28_pixel_digits_are_centred_by_padding_not_resized():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28) % 200 + 1
    x = data.to_32(images)
    assert x.shape == (2, 1, 32, 32)
    assert torch.equal(x[:, 0, 2:30, 2:30], torch.as_tensor(images))
    border = x.clone()
    border[:, :, 2:30, 2:30] = 0
    assert int(border.abs().sum()) == 0


@needs_mnist
def test_mnist_reader_on_the_real_test_files():
    images = data.read_idx(MNIST_T10K / "t10k-images-idx3-ubyte.gz")
    labels = data.read_idx(MNIST_T10K / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == T10K_CLASS_COUNTS
    expected = data.raw_files("mnist")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert data.md5(MNIST_T10K / name) == expected[name]


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    """The MNIST files the benchmark's loader path and the tests write are IDX files read_idx reads
    back."""
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    data.write_idx(tmp_path / f"x-idx3-ubyte{suffix}", images)
    data.write_idx(tmp_path / f"y-idx1-ubyte{suffix}", np.array([1, 2, 3], dtype=np.uint8))
    assert (data.read_idx(tmp_path / f"x-idx3-ubyte{suffix}") == images).all()
    assert data.read_idx(tmp_path / f"y-idx1-ubyte{suffix}").tolist() == [1, 2, 3]


@pytest.fixture
def mnist_dir(tmp_path):
    """A data_dir as on an offline cluster: the real t10k files, and a train set made from them
    (the real MNIST training files are not available here)."""
    if not (MNIST_T10K / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the real MNIST test files are not at {MNIST_T10K}")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(MNIST_T10K / name, tmp_path / name)
    images = data.read_idx(MNIST_T10K / "t10k-images-idx3-ubyte.gz")[:2000]
    labels = data.read_idx(MNIST_T10K / "t10k-labels-idx1-ubyte.gz")[:2000]
    data.write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    data.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    return tmp_path


def test_mnist_from_data_dir(mnist_dir, tmp_path):
    dataset = {**DIGITS, "name": "mnist", "data_dir": str(mnist_dir), "verify_md5": False}
    manifest = data.prepare(dataset, tmp_path / "m.pt", tmp_path / "m.json")
    assert manifest["sizes"] == {"train": 1800, "valid": 200, "test": 10000}
    assert manifest["class_counts"]["test"] == T10K_CLASS_COUNTS
    assert manifest["image_shape"] == [1, 32, 32]
    assert manifest["sources"]["t10k-images-idx3-ubyte.gz"] == "9fb629c4189551a2d022fa330f9573f3"


def test_checksum_error_names_the_file_and_nothing_is_written(mnist_dir, tmp_path):
    dataset = {**DIGITS, "name": "mnist", "data_dir": str(mnist_dir)}
    with pytest.raises(
        data.DatasetError, match="train-images-idx3-ubyte.gz"
    ):  # made here: not the real file
        data.prepare(dataset, tmp_path / "m.pt", tmp_path / "m.json")
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "m.json").exists()


def test_truncated_file_is_caught(tmp_path):
    """On raw files made here (nothing of it needs the real ones): a truncated file does not read,
    and its checksum is refused."""
    mnist_dir, rng = tmp_path, np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 10)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        data.write_idx(mnist_dir / f"{split}-images-idx3-ubyte.gz", images)
        data.write_idx(mnist_dir / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    target = mnist_dir / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(data.DatasetError, match="t10k-images-idx3-ubyte.gz.*truncated"):
        data.read_idx(target)
    with pytest.raises(
        data.DatasetError, match="checksum mismatch for .*t10k-images-idx3-ubyte.gz"
    ):
        data.fetch({"name": "mnist", "data_dir": str(mnist_dir), "verify_md5": True}, mnist_dir)


def test_missing_raw_files_say_what_to_do(tmp_path):
    with pytest.raises(data.DatasetError, match="data_dir.*download"):
        data.fetch({"name": "fashion_mnist", "data_dir": str(tmp_path)}, tmp_path)
