"""MNIST: the IDX parser on tiny files written in the official format, and the real files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from adamlab.data import _store, mnist
from adamlab.data._store import ChecksumError, FormatError, MissingDataError

from conftest import missing


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The official IDX encoding: 0x0000, type 0x08, ndim, big-endian dims, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 + array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 0, 9, 1, 1], dtype=np.uint8)
    return tmp_path, images, labels


def test_parse_idx_reads_header_and_data(tiny):
    _, images, labels = tiny
    np.testing.assert_array_equal(mnist.parse_idx(idx_bytes(images), ndim=3), images)
    np.testing.assert_array_equal(mnist.parse_idx(idx_bytes(labels), ndim=1), labels)


def test_read_pair_from_gz_and_raw_files(tiny):
    tmp, images, labels = tiny
    (tmp / "img.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp / "lab").write_bytes(idx_bytes(labels))
    x, y = mnist.read_pair(tmp / "img.gz", tmp / "lab")
    assert x.dtype == np.float32 and x.shape == (5, 784) and y.dtype == np.int64
    np.testing.assert_array_equal(x, images.reshape(5, -1).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    x3, _ = mnist.read_pair(tmp / "img.gz", tmp / "lab", flatten=False)
    assert x3.shape == (5, 28, 28) and x3.max() <= 1.0 and x3.min() >= 0.0


@pytest.mark.parametrize("magic, ndim, message", [
    (0x00000801, 3, "has 1 dimensions, expected 3"),   # a labels file where images are expected
    (0x00000803, 1, "has 3 dimensions, expected 1"),
    (0x01000803, 3, "must start with two zero bytes"),
    (0x00000903, 3, "type byte 0x09"),
])
def test_wrong_magic_numbers_are_rejected(magic, ndim, message):
    arr = np.zeros((2, 28, 28) if magic & 0xFF == 3 else (2,), dtype=np.uint8)
    with pytest.raises(FormatError, match=message):
        mnist.parse_idx(idx_bytes(arr, magic=magic), ndim=ndim)


def test_truncated_and_padded_files_are_rejected(tiny):
    _, images, _ = tiny
    data = idx_bytes(images)
    with pytest.raises(FormatError, match="truncated"):
        mnist.parse_idx(data[:-1], ndim=3)
    with pytest.raises(FormatError, match="trailing bytes"):
        mnist.parse_idx(data + b"\x00", ndim=3)
    with pytest.raises(FormatError, match="truncated IDX header"):
        mnist.parse_idx(data[:10], ndim=3)
    with pytest.raises(FormatError, match="too short"):
        mnist.parse_idx(b"\x00\x00", ndim=3)


def test_truncated_gzip_is_rejected(tiny):
    tmp, images, _ = tiny
    gz = gzip.compress(idx_bytes(images))
    (tmp / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(FormatError, match="corrupt or truncated gzip"):
        mnist.read_idx(tmp / "cut.gz", ndim=3)


def test_mismatched_counts_are_rejected(tiny):
    tmp, images, labels = tiny
    (tmp / "img").write_bytes(idx_bytes(images))
    (tmp / "lab").write_bytes(idx_bytes(labels[:4]))
    with pytest.raises(FormatError, match="5 images but .* 4 labels"):
        mnist.read_pair(tmp / "img", tmp / "lab")
    (tmp / "lab").write_bytes(idx_bytes(labels))
    with pytest.raises(FormatError, match="5 images, expected 60000"):
        mnist.read_pair(tmp / "img", tmp / "lab", expected=60000)
    (tmp / "lab").write_bytes(idx_bytes(np.array([0, 1, 2, 3, 10], dtype=np.uint8)))
    with pytest.raises(FormatError, match="label 10 outside 0..9"):
        mnist.read_pair(tmp / "img", tmp / "lab")


def test_missing_files_name_the_file_and_the_fetch_command(tmp_path):
    with pytest.raises(MissingDataError, match=r"train-images-idx3-ubyte\.gz is missing; run `adamlab data fetch mnist`"):
        mnist.load_mnist(root=tmp_path)


def test_a_corrupt_official_file_is_detected_not_used(tmp_path, tiny):
    _, images, _ = tiny
    bad = mnist.ARCHIVES["train_images"].path(tmp_path)
    bad.parent.mkdir(parents=True)
    bad.write_bytes(gzip.compress(idx_bytes(images)))  # a valid IDX file, but not the official one
    with pytest.raises(ChecksumError, match=r"train-images-idx3-ubyte\.gz has \d+ bytes, expected 9912422.*corrupt"):
        mnist.load_mnist(root=tmp_path)


# --- real data ------------------------------------------------------------------------------------

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def real(data_root):
    if not all(r.path(data_root).is_file() or mnist.EXTRACTED[k].path(data_root).is_file()
               for k, r in mnist.ARCHIVES.items()):
        missing("mnist", f"MNIST files not in {data_root}/mnist")
    return mnist.load_mnist(root=data_root)


def test_real_shapes_ranges_and_dtypes(real):
    assert real.x_train.shape == (60000, 784) and real.x_test.shape == (10000, 784)
    for x in (real.x_train, real.x_test):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    assert real.y_train.dtype == np.int64 and real.y_test.dtype == np.int64


def test_real_label_histograms(real):
    assert np.bincount(real.y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(real.y_test, minlength=10).tolist() == TEST_COUNTS


def test_real_checksums_verified_and_not_rehashed(real, data_root, monkeypatch):
    for res in mnist.ARCHIVES.values():
        if res.path(data_root).is_file():
            assert _store.is_verified(res, data_root), res.relpath

    def no_hashing(*args):
        raise AssertionError("a verified, unchanged file was hashed again")

    monkeypatch.setattr(_store, "file_digest", no_hashing)
    again = mnist.load_mnist(root=data_root)
    np.testing.assert_array_equal(again.y_test, real.y_test)


def test_a_file_of_the_right_size_but_wrong_content_fails_its_sha256(tmp_path):
    for key in ("test_images", "test_labels"):
        res = mnist.ARCHIVES[key]
        res.path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
        res.path(tmp_path).write_bytes(b"\x00" * res.size)
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte\.gz: sha256 is [0-9a-f]{64}, expected 8d422c7b"):
        mnist.load_split("test", root=tmp_path)
