import gzip
import struct

import numpy as np
import pytest

from nas.errors import DataError
from nas.training.data import _download, load_dataset, read_idx


def _rows(x):
    return {row.tobytes() for row in x.reshape(len(x), -1)}


def test_digits_split_is_deterministic_disjoint_and_stratified(digits):
    again = load_dataset("digits")
    assert np.array_equal(digits.x_val, again.x_val) and np.array_equal(digits.y_test, again.y_test)
    total = len(digits.x_train) + len(digits.x_val) + len(digits.x_test)
    assert total == 1797 and digits.input_shape == (8, 8, 1) and digits.num_classes == 10
    # digits has a few duplicate images, so compare row sets loosely: splits are essentially disjoint.
    assert len(_rows(digits.x_val) & _rows(digits.x_test)) < 5
    assert set(np.unique(digits.y_val)) == set(range(10)) == set(np.unique(digits.y_test))
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() == 1.0


def _write_idx(path, array, compress=False):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def test_idx_directory_loads_in_plain_and_gzip_form(tmp_path):
    rng = np.random.default_rng(0)
    x_train, y_train = rng.integers(0, 256, (40, 6, 6)), np.arange(40) % 4
    x_test, y_test = rng.integers(0, 256, (12, 6, 6)), np.arange(12) % 4
    _write_idx(tmp_path / "train-images-idx3-ubyte", x_train, compress=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", y_train)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", x_test)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", y_test, compress=True)
    data = load_dataset(str(tmp_path))
    assert data.input_shape == (6, 6, 1) and data.num_classes == 4
    assert len(data.x_train) + len(data.x_val) == 40 and len(data.x_val) == 8
    np.testing.assert_allclose(data.x_test[..., 0], x_test / 255.0, rtol=1e-6)


def test_truncated_or_foreign_idx_files_are_rejected(tmp_path):
    path = tmp_path / "x"
    _write_idx(path, np.zeros((5, 4, 4)))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="magic"):
        read_idx(path)


def test_cifar10_binary_batches_load_channels_last(tmp_path):
    rng = np.random.default_rng(0)

    def batch(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        pixels = rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
        return labels, pixels, np.concatenate([labels[:, None], pixels.reshape(n, -1)], 1)

    _, _, first = batch(30)
    labels, pixels, test = batch(10)
    first.tofile(tmp_path / "data_batch_1.bin")
    test.tofile(tmp_path / "test_batch.bin")
    data = load_dataset(str(tmp_path))
    assert data.input_shape == (32, 32, 3)
    np.testing.assert_array_equal(data.y_test, labels)
    np.testing.assert_allclose(data.x_test[3, 5, 7], pixels[3, :, 5, 7] / 255.0, rtol=1e-6)


def test_npz_files_load_and_bad_ones_are_named(tmp_path):
    good = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(
        good,
        x_train=rng.random((50, 5, 5)),
        y_train=np.arange(50) % 3,
        x_test=rng.random((9, 5, 5)),
        y_test=np.arange(9) % 3,
    )
    data = load_dataset(str(good))
    assert data.name == "d" and data.num_classes == 3 and len(data.x_val) == 9  # 20% of each class, rounded
    missing = tmp_path / "m.npz"
    np.savez(missing, x_train=np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"lacks arrays \['x_test', 'y_test', 'y_train'\]"):
        load_dataset(str(missing))
    broken = tmp_path / "b.npz"
    broken.write_bytes(good.read_bytes()[:100])
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        load_dataset(str(broken))
    single = tmp_path / "one.npz"
    with single.open("wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(DataError, match=r"single \.npy array"):
        load_dataset(str(single))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.npz"))


def test_unknown_dataset_lists_the_options():
    with pytest.raises(DataError, match="unknown dataset 'imagenet'; use one of digits, mnist"):
        load_dataset("imagenet")


def test_failed_download_says_where_to_put_files_and_writes_nothing(tmp_path):
    target_dir = tmp_path / "mnist"
    # Port 9 (discard) on loopback refuses at once: the real offline code path, no mock.
    with pytest.raises(DataError, match=f"put the files in {target_dir}"):
        _download("http://127.0.0.1:9/train.gz", target_dir / "train.gz", "mnist", target_dir)
    assert not target_dir.exists()


def test_raw_inputs_are_kept_as_given_and_other_npz_inputs_must_be_images(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.normal(size=(60, 4, 4)).astype(np.float32) * 3,
        "y_train": np.arange(60) % 3,
        "x_test": rng.normal(size=(12, 4, 4)).astype(np.float32),
        "y_test": np.arange(12) % 3,
    }
    np.savez(tmp_path / "standardized.npz", **arrays)
    with pytest.raises(DataError, match="raw_inputs=True"):
        load_dataset(str(tmp_path / "standardized.npz"))
    np.savez(tmp_path / "raw.npz", **arrays, raw_inputs=np.asarray(True))
    raw = load_dataset(str(tmp_path / "raw.npz"))
    together = np.concatenate([raw.x_train, raw.x_val])[..., 0]
    assert sorted(together.reshape(-1)) == sorted(arrays["x_train"].reshape(-1))  # neither rescaled nor clipped
    arrays["x_test"][0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays, raw_inputs=np.asarray(True))
    with pytest.raises(DataError, match="finite"):
        load_dataset(str(tmp_path / "nan.npz"))
