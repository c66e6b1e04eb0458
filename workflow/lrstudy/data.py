"""Dataset preparation: raw files -> one tensor file with train/valid/test splits and a manifest.

Every dataset ends up as uint8 images of shape [N, C, 32, 32] (LeNet5's classic input size) plus
int64 labels; normalisation statistics come from the train split only and are applied when a
training job loads the file (`load_prepared`), so the prepared file stays small.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lrstudy.faults import Corrupted
from lrstudy.io import atomic_path, file_hash, write_json

DATASETS = ("mnist10k", "digits", "mnist", "fashion_mnist", "cifar10")
IMAGE_SIZE = 32
# MNIST's 10,000 test images ship with the workflow (workflow/data/mnist10k, CC BY-SA 3.0, LeCun &
# Cortes): the embedded default dataset, split into train/valid/test here.
EMBEDDED = Path(__file__).resolve().parents[1] / "data"


class DatasetError(RuntimeError):
    """A raw dataset file is missing, truncated or fails its checksum."""


def raw_files(name: str) -> dict[str, str]:
    """The raw files a dataset needs, file name -> MD5, as torchvision publishes them."""
    from torchvision import datasets

    if name == "mnist10k":
        return {f: md5 for f, md5 in datasets.MNIST.resources if f.startswith("t10k")}
    if name in ("mnist", "fashion_mnist"):
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        return dict(cls.resources)
    if name == "cifar10":
        return {datasets.CIFAR10.filename: datasets.CIFAR10.tgz_md5}
    return {}


def md5(path: Path) -> str:
    return file_hash(path, "md5")


def raw_dir(dataset: dict, resources: Path = Path("resources")) -> Path:
    """Where the raw files are read from: `data_dir` when given, else the embedded copy
    (mnist10k) or resources/<name>."""
    if dataset.get("data_dir"):
        return Path(dataset["data_dir"])
    return (EMBEDDED if dataset["name"] == "mnist10k" else resources) / dataset["name"]


def fetch(dataset: dict, folder: Path) -> dict[str, str]:
    """Make sure every raw file is in `folder` (downloading when allowed) and checksum it.

    Returns file name -> MD5 for the manifest. Raises DatasetError naming the file otherwise.
    """
    name = dataset["name"]
    expected = raw_files(name)
    missing = [f for f in expected if not (folder / f).is_file()]
    if missing and dataset.get("download") and not dataset.get("data_dir"):
        download(name, folder, missing)
        missing = [f for f in expected if not (folder / f).is_file()]
    if missing:
        raise DatasetError(
            f"dataset {name!r}: missing raw file(s) {', '.join(str(folder / f) for f in missing)}; "
            "put the files in `dataset.data_dir` or set `dataset.download: true`"
        )
    sums = {filename: md5(folder / filename) for filename in expected}
    bad = [
        f"{folder / f}: MD5 {sums[f]}, expected {want}"
        for f, want in expected.items()
        if sums[f] != want
    ]
    if bad and dataset.get("verify_md5", True):
        raise DatasetError(
            f"checksum mismatch for {'; '.join(bad)} "
            "(truncated or corrupted download? delete and fetch again)"
        )
    return sums


def download(name: str, folder: Path, files: list[str]) -> None:
    from torchvision import datasets
    from torchvision.datasets.utils import download_url

    expected = raw_files(name)
    if name == "cifar10":
        urls = {datasets.CIFAR10.filename: [datasets.CIFAR10.url]}
    else:
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        urls = {f: [m + f for m in cls.mirrors] for f in files}
    for filename in files:
        failures = []
        for url in urls[filename]:
            try:
                download_url(url, str(folder), filename=filename, md5=expected[filename])
                break
            except Exception as error:  # offline, refused, not found, wrong MD5: the next mirror
                failures.append(f"{url}: {error}")
        else:
            raise DatasetError(
                f"dataset {name!r}: the download of {filename} failed from every address tried "
                f"({'; '.join(failures)}). Without internet (a cluster's compute node), fetch the "
                "files elsewhere and set `dataset.data_dir` to their folder (config/README.md)."
            )


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file, the MNIST format: magic, dims, big-endian sizes, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DatasetError(
            f"{path}: header says {shape}, file holds {data.size} values (truncated?)"
        )
    return data.reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write unsigned bytes as an IDX file (gzipped when the name ends in .gz): read_idx's
    inverse."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


def read_cifar10(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read CIFAR-10's python-version tarball into {"train": (x, y), "test": (x, y)}."""
    parts: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            base = Path(member.name).name
            split = (
                "train"
                if base.startswith("data_batch")
                else "test"
                if base == "test_batch"
                else None
            )
            if split:
                batch = pickle.load(tar.extractfile(member), encoding="latin1")
                x = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                parts[split].append((x, np.asarray(batch["labels"], dtype=np.int64)))
    if not parts["train"] or not parts["test"]:
        raise DatasetError(f"{path} holds no data_batch_* or test_batch member")
    return {
        s: (np.concatenate([p[0] for p in v]), np.concatenate([p[1] for p in v]))
        for s, v in parts.items()
    }


def to_32(images: np.ndarray, scale: float = 1.0) -> torch.Tensor:
    """[N, H, W] or [N, C, H, W] array -> uint8 tensor [N, C, 32, 32].

    28x28 digits are centred in a 32x32 field of background (zero padding), as LeCun et al. (1998)
    fed LeNet-5; other sizes (the 8x8 `digits`) are resized bilinearly."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) * scale)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.shape[-1] == 28:
        x = F.pad(x, (2, 2, 2, 2))
    elif x.shape[-1] != IMAGE_SIZE:
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, carve) with `fraction` of every class carved out, reproducibly."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    keep, carve = train_test_split(index, test_size=fraction, stratify=y, random_state=seed)
    return np.sort(keep), np.sort(carve)


def load_raw(dataset: dict, folder: Path) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """{"train": (x, y), "test": (x, y)} before the valid split, x as uint8 [N, C, 32, 32]."""
    name = dataset["name"]
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()  # bundled with scikit-learn: 1797 real 8x8 digits, values 0..16
        keep, test = stratified_split(
            digits.target, dataset["test_fraction"], dataset["split_seed"]
        )
        x = to_32(digits.images, scale=255.0 / 16.0)
        y = digits.target.astype(np.int64)
        return {"train": (x[keep], y[keep]), "test": (x[test], y[test])}
    if name == "mnist10k":
        images, labels = (read_idx(folder / f) for f in raw_files(name))
        keep, test = stratified_split(labels, dataset["test_fraction"], dataset["split_seed"])
        x, y = to_32(images), labels.astype(np.int64)
        return {"train": (x[keep], y[keep]), "test": (x[test], y[test])}
    if name == "cifar10":
        parts = read_cifar10(folder / next(iter(raw_files(name))))
        return {s: (to_32(x), y) for s, (x, y) in parts.items()}
    files = list(raw_files(name))  # train images, train labels, test images, test labels
    return {
        "train": (to_32(read_idx(folder / files[0])), read_idx(folder / files[1]).astype(np.int64)),
        "test": (to_32(read_idx(folder / files[2])), read_idx(folder / files[3]).astype(np.int64)),
    }


def prepare(
    dataset: dict, out: Path, manifest_path: Path, resources: Path = Path("resources")
) -> dict:
    """Build the prepared tensor file and its manifest; returns the manifest."""
    folder = raw_dir(dataset, resources)
    sources = (
        fetch(dataset, folder)
        if dataset["name"] != "digits"
        else {"sklearn.datasets.load_digits": "bundled"}
    )
    parts = load_raw(dataset, folder)
    x_all, y_all = parts["train"]
    train, valid = stratified_split(y_all, dataset["valid_fraction"], dataset["split_seed"])
    splits = {
        "train": (x_all[train], torch.as_tensor(y_all[train])),
        "valid": (x_all[valid], torch.as_tensor(y_all[valid])),
        "test": (parts["test"][0], torch.as_tensor(parts["test"][1])),
    }
    pixels = splits["train"][0].float().div(255)
    mean = pixels.mean(dim=(0, 2, 3)).tolist()
    std = pixels.std(dim=(0, 2, 3)).tolist()
    num_classes = int(max(int(y.max()) for _, y in splits.values()) + 1)
    manifest = {
        "dataset": dataset["name"],
        "config": dataset,
        "raw_dir": str(folder) if dataset["name"] != "digits" else None,
        "sources": sources,
        "image_shape": list(splits["train"][0].shape[1:]),
        "num_classes": num_classes,
        "mean": mean,
        "std": std,
        "sizes": {s: int(len(y)) for s, (_, y) in splits.items()},
        "class_counts": {
            s: np.bincount(y.numpy(), minlength=num_classes).tolist()
            for s, (_, y) in splits.items()
        },
    }
    payload = {s: {"x": x.contiguous(), "y": y.contiguous()} for s, (x, y) in splits.items()}
    payload["meta"] = {
        k: manifest[k] for k in ("dataset", "mean", "std", "num_classes", "image_shape")
    }
    manifest["fingerprint"] = fingerprint(payload)  # load_prepared checks the file against it
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    write_json(manifest_path, manifest)
    return manifest


def fingerprint(payload: dict) -> str:
    """A hash of the prepared tensors (not of the file, whose bytes vary between preparations):
    a run's spec names the dataset but not its split, and a checkpoint trained on other data must
    not be resumed."""
    digest = hashlib.sha256(json.dumps(payload["meta"], sort_keys=True).encode())
    for split in ("train", "valid", "test"):
        for key in ("x", "y"):
            digest.update(payload[split][key].contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def read_prepared(path: Path) -> dict:
    """The prepared file's tensors (torch's safe loader), or Corrupted naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, or not a prepared file
        reason = str(error).strip().splitlines()[0][:300] if str(error).strip() else repr(error)
        why = f"the prepared data do not load ({reason})"
        raise Corrupted(path, why, reprepare(path)) from None


def check_manifest(path: Path, found: str) -> None:
    """The tensors' fingerprint against the one its manifest (the .json beside it) recorded."""
    manifest = path.with_suffix(".json")
    if not manifest.is_file():
        return
    try:
        expected = json.loads(manifest.read_text()).get("fingerprint")
    except ValueError as error:
        raise Corrupted(manifest, f"does not parse as JSON ({error})", reprepare(path)) from None
    if expected is not None and expected != found:
        why = f"its tensors' fingerprint {found} is not {expected}, the one {manifest} holds"
        raise Corrupted(path, f"{why} (corrupted, or replaced since)", reprepare(path))


def reprepare(path: Path) -> str:
    return (
        f"Nothing was trained on it. Delete {path} and {path.with_suffix('.json')} and rerun: "
        "Snakemake prepares them again."
    )


def load_prepared(
    path: Path, device: str | torch.device = "cpu", payload: dict | None = None
) -> dict:
    """Load a prepared file (or its `payload`, read already) as normalised float tensors on
    `device`: {split: (x, y)}, plus "meta" and the data's "fingerprint"."""
    payload = payload if payload is not None else read_prepared(Path(path))
    meta = payload["meta"]
    mean = torch.tensor(meta["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(meta["std"]).view(1, -1, 1, 1)
    out = {"meta": meta, "fingerprint": fingerprint(payload)}
    check_manifest(Path(path), out["fingerprint"])
    for split in ("train", "valid", "test"):
        x = (payload[split]["x"].float().div_(255) - mean) / std
        out[split] = (x.to(device), payload[split]["y"].to(device))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Prepare a dataset as one tensor file and a manifest."
    )
    parser.add_argument(
        "--dataset", required=True, help="the `dataset` section of the config, as JSON"
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--resources", default="resources", type=Path)
    parser.add_argument(
        "--python-path", default="[]", help="folders of a data factory's package, as JSON"
    )
    args = parser.parse_args(argv)
    dataset = json.loads(args.dataset)
    if dataset.get("factory"):  # the user's data (lrstudy.inputs)
        from lrstudy import inputs

        manifest = inputs.prepare(dataset, args.out, args.manifest, json.loads(args.python_path))
        print(json.dumps({k: manifest[k] for k in ("dataset", "task", "loader", "sizes")}))
        return
    manifest = prepare(dataset, args.out, args.manifest, args.resources)
    print(json.dumps({k: manifest[k] for k in ("dataset", "sizes", "class_counts")}))


if __name__ == "__main__":
    main()
