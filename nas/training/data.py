"""Datasets: the embedded digits default, user ``.npz`` files, MNIST / Fashion-MNIST IDX and CIFAR-10 binaries.

Every dataset is split deterministically into train, validation and test. The search only sees validation
accuracy; the test split is for reporting. Images are float32 in [0, 1], channels last.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import DataError

VALIDATION_FRACTION = 0.2
SPLIT_SEED = 0
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_URLS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
BUILTIN_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
MAX_CLASSES = 10_000  # a label beyond this is an id, not a class index: the classifier would have that many outputs


@dataclass(frozen=True, kw_only=True, eq=False)
class Dataset:
    """Train/validation/test arrays plus the identity used for caching."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (no batch axis)."""
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """SHA-256 over all arrays: two datasets with equal content share cached baselines."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def default_data_dir() -> Path:
    """Where downloaded datasets are cached: ``$NAS_DATA_DIR`` or ``~/.cache/nas-compress/datasets``."""
    return Path(os.environ.get("NAS_DATA_DIR", Path.home() / ".cache" / "nas-compress" / "datasets"))


def load_dataset(source: str, *, data_dir: Path | None = None) -> Dataset:
    """Loads ``digits``, ``mnist``, ``fashion_mnist``, ``cifar10``, a ``.npz`` file, or an IDX/CIFAR directory.

    Raises:
        DataError: unknown name, missing or malformed files; the message says where to put what.
    """
    data_dir = data_dir or default_data_dir()
    path = Path(source)
    if source == "digits":
        return _digits()
    if source in ("mnist", "fashion_mnist"):
        return _from_idx_dir(source, _ensure_idx(source, data_dir / source))
    if source == "cifar10":
        return _from_cifar_dir(_ensure_cifar(data_dir / "cifar10"))
    if path.suffix == ".npz":
        return load_npz(path)
    if path.is_dir():
        if all(_find(path, stem) for stem in _IDX_FILES.values()):
            return _from_idx_dir(path.name, path)
        if _find(path, "test_batch.bin"):
            return _from_cifar_dir(path)
        raise DataError(
            f"directory {source!r} holds neither MNIST-style IDX files ({', '.join(_IDX_FILES.values())}) "
            "nor CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin)"
        )
    raise DataError(
        f"unknown dataset {source!r}; use one of {', '.join(BUILTIN_DATASETS)}, a .npz file with "
        "x_train, y_train, x_test, y_test, or a directory of IDX / CIFAR-10 binary files"
    )


def load_npz(path: Path) -> Dataset:
    """Loads a user ``.npz`` with ``x_train, y_train, x_test, y_test``; validation comes from the train part.

    With a true ``raw_inputs`` array in the file the inputs are taken as they are (any finite values, not
    rescaled): what a user's own model was trained on.
    """
    try:
        # Our own handle: numpy leaves its file open when the archive turns out to be truncated.
        with path.open("rb") as handle, _npz_archive(handle, path) as archive:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(archive.files)
            if missing:
                raise DataError(
                    f"{str(path)!r} lacks arrays {sorted(missing)}; it needs x_train, y_train, x_test, y_test"
                )
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
            raw = "raw_inputs" in archive.files and bool(np.asarray(archive["raw_inputs"]).all())
    except FileNotFoundError:
        raise DataError(f"dataset file {str(path)!r} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{str(path)!r} is not a readable .npz file ({err or 'empty'})") from None
    return from_arrays(path.stem, **arrays, raw=raw)


def _npz_archive(handle: Any, path: Path) -> Any:
    archive = np.load(handle, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy holds one array, not the four needed
        raise DataError(f"{str(path)!r} is a single .npy array; save x_train, y_train, x_test, y_test with np.savez")
    return archive


def from_arrays(
    name: str,
    *,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    raw: bool = False,
) -> Dataset:
    """Validates arrays, scales images to [0, 1], adds a channel axis if needed and splits off validation.

    ``raw`` inputs are kept as they are (finite values of any sign, never rescaled), for a model trained on them.
    """
    x_train, x_test = _as_images(name, x_train, raw), _as_images(name, x_test, raw)
    y_train, y_test = _as_labels(name, y_train, len(x_train)), _as_labels(name, y_test, len(x_test))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{name}: train images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ")
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if num_classes < 2 or len(np.unique(y_train)) < 2:
        raise DataError(f"{name}: labels must cover at least two classes")
    if num_classes > MAX_CLASSES:
        raise DataError(
            f"{name}: labels go up to {num_classes - 1}; they must be class indices 0..K-1 with K <= {MAX_CLASSES}"
        )
    scale = 255.0 if not raw and max(x_train.max(), x_test.max()) > 1.0 else 1.0
    train_idx, val_idx = _stratified_split(y_train, VALIDATION_FRACTION, SPLIT_SEED)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise DataError(
            f"{name}: {len(y_train)} training examples leave no validation split ({VALIDATION_FRACTION:.0%} of each "
            "class); give at least 3 examples of a class"
        )
    return Dataset(
        name=name,
        x_train=(x_train[train_idx] / scale).astype(np.float32),
        y_train=y_train[train_idx],
        x_val=(x_train[val_idx] / scale).astype(np.float32),
        y_val=y_train[val_idx],
        x_test=(x_test / scale).astype(np.float32),
        y_test=y_test,
        num_classes=num_classes,
    )


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int32)
    rest, test = _stratified_split(labels, 0.2, SPLIT_SEED)
    dataset = from_arrays(
        "digits", x_train=images[rest], y_train=labels[rest], x_test=images[test], y_test=labels[test]
    )
    return dataset


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic per-class split: ``fraction`` of each class goes to the second part."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = round(len(members) * fraction)
        second.append(members[:count])
        first.append(members[count:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def _as_images(name: str, x: np.ndarray, raw: bool = False) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "uif" or x.ndim not in (2, 3, 4) or len(x) == 0:
        raise DataError(f"{name}: images must be a non-empty numeric array of rank 2-4, got {x.dtype} {x.shape}")
    if x.ndim == 3:
        x = x[..., None]
    if not np.isfinite(x).all():
        raise DataError(f"{name}: inputs must be finite (no NaN or infinity)")
    if not raw and x.min() < 0:
        raise DataError(
            f"{name}: images must be non-negative (pixels in [0, 1] or [0, 255]); for inputs a model was trained "
            "on as they are (e.g. standardized), add raw_inputs=True to the .npz"
        )
    return x.astype(np.float32)


def _as_labels(name: str, y: np.ndarray, count: int) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind not in "ui" or len(y) != count or (len(y) and y.min() < 0):
        raise DataError(f"{name}: labels must be {count} non-negative integers, got {y.dtype} {y.shape}")
    if len(y) and y.max() > np.iinfo(np.int32).max:
        raise DataError(f"{name}: label {y.max()} does not fit int32; labels are class indices 0..K-1")
    return y.astype(np.int32)


def read_idx(path: Path) -> np.ndarray:
    """Reads an IDX file (plain or ``.gz``): the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as err:  # EOFError: a .gz cut short
        raise DataError(f"cannot read IDX file {str(path)!r}: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{str(path)!r} is not an unsigned-byte IDX file (bad magic number)")
    rank = data[3]
    if len(data) < 4 + 4 * rank:
        raise DataError(f"{str(path)!r} is truncated inside its header ({len(data)} bytes)")
    dims = struct.unpack(f">{rank}I", data[4 : 4 + 4 * rank])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{str(path)!r} is truncated: header says {dims}, found {body.size} values")
    return body.reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _from_idx_dir(name: str, directory: Path) -> Dataset:
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in _IDX_FILES.items()}  # type: ignore[arg-type]
    return from_arrays(
        name, x_train=arrays["train_x"], y_train=arrays["train_y"], x_test=arrays["test_x"], y_test=arrays["test_y"]
    )


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads one CIFAR-10 binary batch: records of 1 label byte + 3072 pixel bytes (channels first)."""
    data = np.fromfile(path, dtype=np.uint8)
    record = 1 + 3 * 32 * 32
    if data.size == 0 or data.size % record:
        raise DataError(f"{str(path)!r} is not a CIFAR-10 binary batch ({data.size} bytes, not a multiple of {record})")
    rows = data.reshape(-1, record)
    images = rows[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, rows[:, 0].astype(np.int32)


def _from_cifar_dir(directory: Path) -> Dataset:
    train_files = sorted(directory.glob("data_batch_*.bin"))
    if not train_files or not (directory / "test_batch.bin").exists():
        raise DataError(f"{str(directory)!r} needs data_batch_1.bin ... data_batch_5.bin and test_batch.bin")
    train = [read_cifar_batch(f) for f in train_files]
    x_test, y_test = read_cifar_batch(directory / "test_batch.bin")
    return from_arrays(
        "cifar10",
        x_train=np.concatenate([x for x, _ in train]),
        y_train=np.concatenate([y for _, y in train]),
        x_test=x_test,
        y_test=y_test,
    )


def _ensure_idx(name: str, directory: Path) -> Path:
    missing = [stem for stem in _IDX_FILES.values() if not _find(directory, stem)]
    for stem in missing:
        _download(f"{_IDX_URLS[name]}{stem}.gz", directory / f"{stem}.gz", name, directory)
    return directory


def _ensure_cifar(directory: Path) -> Path:
    if not (directory / "test_batch.bin").exists():
        archive = directory / "cifar-10-binary.tar.gz"
        _download(_CIFAR_URL, archive, "cifar10", directory)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(".bin"):
                    member.name = Path(member.name).name
                    tar.extract(member, directory, filter="data")
    return directory


def _download(url: str, target: Path, name: str, directory: Path) -> None:
    """Downloads to a temporary name and renames, so an interrupted download never looks complete."""
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            payload = response.read()
    except OSError as err:
        raise DataError(
            f"cannot download {name} ({err}); put the files in {directory} "
            f"(or set NAS_DATA_DIR, or pass the directory as --dataset)"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(payload)
    partial.rename(target)
