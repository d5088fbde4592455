"""MNIST (LeCun et al., 1998) from the official IDX files.

IDX format (big-endian): two zero bytes, a type byte (0x08 = unsigned byte), the number of
dimensions, one 4-byte size per dimension, then the data in C order. Labels use magic 0x00000801
(1 dimension), images 0x00000803 (3 dimensions: count, rows, cols).

:func:`load_mnist` returns images as float32 in [0, 1] (pixel / 255), flattened to (N, 784) in
row-major order (``flatten=False`` keeps (N, 28, 28)), and int64 labels 0..9. The paper's
logistic regression (Section 6.1) uses the 784 raw pixels.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._store import Checksum, FormatError, MissingDataError, Resource, copy_in, data_dir, ensure, \
    fetch_command, find_local, offline, verify

DATASET = "mnist"
# Official host first; it often refuses or times out, so two widely used mirrors follow
# (the ones torchvision and TensorFlow use). The files are identical on all three.
MIRRORS = (
    "http://yann.lecun.com/exdb/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# SHA-256 of the official .gz files (they match the official MD5s, see shared/data/MANIFEST.md),
# and SHA-256 of their decompressed content, for users who keep the extracted IDX files.
_FILES = {
    "train_images": ("train-images-idx3-ubyte", 9_912_422,
                     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                     47_040_016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": ("train-labels-idx1-ubyte", 28_881,
                     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                     60_008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": ("t10k-images-idx3-ubyte", 1_648_877,
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    7_840_016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": ("t10k-labels-idx1-ubyte", 4_542,
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    10_008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

ARCHIVES = {
    key: Resource(f"mnist/{name}.gz", Checksum("sha256", gz_sha), DATASET,
                  urls=tuple(m + name + ".gz" for m in MIRRORS), size=gz_size)
    for key, (name, gz_size, gz_sha, _, _) in _FILES.items()
}
EXTRACTED = {
    key: Resource(f"mnist/{name}", Checksum("sha256", raw_sha), DATASET, size=raw_size)
    for key, (name, _, _, raw_size, raw_sha) in _FILES.items()
}
RESOURCES = tuple(ARCHIVES.values())

_IDX_UBYTE = 0x08
_EXPECTED = {"train": 60_000, "test": 10_000}


class MNIST(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def parse_idx(data: bytes, ndim: int, name: str = "IDX data") -> np.ndarray:
    """Parse an uncompressed IDX byte string of unsigned bytes with ``ndim`` dimensions.

    Raises FormatError on a wrong magic number, an unsupported type, or a payload whose length
    differs from the header's dimensions (truncated or padded file).
    """
    if len(data) < 4:
        raise FormatError(f"{name}: {len(data)} bytes, too short for an IDX header")
    zero0, zero1, dtype, nd = data[0], data[1], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero0 != 0 or zero1 != 0:
        raise FormatError(f"{name}: bad IDX magic number 0x{magic:08x} (must start with two zero bytes)")
    if dtype != _IDX_UBYTE:
        raise FormatError(f"{name}: IDX type byte 0x{dtype:02x}, expected 0x08 (unsigned byte)")
    if nd != ndim:
        raise FormatError(f"{name}: IDX magic 0x{magic:08x} has {nd} dimensions, expected "
                          f"{ndim} (0x{0x800 + ndim:08x})")
    header = 4 + 4 * nd
    if len(data) < header:
        raise FormatError(f"{name}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd))
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(data) - header
    if payload != expected:
        what = "truncated" if payload < expected else "has trailing bytes"
        raise FormatError(f"{name}: header says {'x'.join(map(str, dims))} = {expected} values "
                          f"but the file {what} ({payload} data bytes)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file, gzip-compressed (official ``.gz``) or not."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise FormatError(f"{path}: corrupt or truncated gzip stream ({e})") from e
    return parse_idx(raw, ndim, name=str(path))


def _locate(key: str, root: Path) -> Path:
    arch, ext = ARCHIVES[key], EXTRACTED[key]
    if arch.path(root).is_file():
        return verify(arch, root)
    if ext.path(root).is_file():
        return verify(ext, root)
    if offline():
        raise MissingDataError(f"{arch.path(root)} is missing; run `{fetch_command(DATASET)}`")
    return ensure(arch, root)


def load_split(split: str, *, flatten: bool = True, root: Path | None = None):
    """Images and labels of one split (``"train"`` or ``"test"``); see :func:`load_mnist`."""
    if split not in _EXPECTED:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = data_dir() if root is None else Path(root)
    return read_pair(_locate(f"{split}_images", root), _locate(f"{split}_labels", root),
                     flatten=flatten, expected=_EXPECTED[split])


def read_pair(images_path: Path, labels_path: Path, *, flatten: bool = True,
              expected: int | None = None):
    """Parse an images/labels IDX pair into float32 images in [0, 1] and int64 labels.

    Raises FormatError on mismatched counts, images that are not 28x28, labels outside 0..9.
    """
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise FormatError(f"{images_path} has {images.shape[0]} images but {labels_path} has "
                          f"{labels.shape[0]} labels")
    if expected is not None and images.shape[0] != expected:
        raise FormatError(f"{images_path}: {images.shape[0]} images, expected {expected}")
    if images.shape[1:] != (28, 28):
        raise FormatError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(labels) and labels.max() > 9:
        raise FormatError(f"{labels_path}: label {labels.max()} outside 0..9")
    x = np.empty(images.shape, dtype=np.float32)
    np.divide(images, np.float32(255), out=x)
    if flatten:
        x = x.reshape(len(x), -1)
    return x, labels.astype(np.int64)


def load_mnist(*, flatten: bool = True, root: Path | None = None) -> MNIST:
    """MNIST train (60,000) and test (10,000) sets.

    Returns ``MNIST(x_train, y_train, x_test, y_test)``: images float32 in [0, 1], shape
    (N, 784) row-major (or (N, 28, 28) with ``flatten=False``); labels int64 in 0..9.
    Files are verified against pinned SHA-256 checksums and fetched on first use unless
    ``ADAMLAB_OFFLINE=1``.
    """
    x_train, y_train = load_split("train", flatten=flatten, root=root)
    x_test, y_test = load_split("test", flatten=flatten, root=root)
    return MNIST(x_train, y_train, x_test, y_test)


def fetch(root: Path | None = None) -> list[Path]:
    """Download (if missing) and verify the four official files."""
    return [ensure(r, root) for r in ARCHIVES.values()]


def fetch_from(source: Path, root: Path | None = None) -> list[Path]:
    """Copy and verify the four files from the local copy ``source`` (``mnist/<name>.gz``, or the
    extracted IDX file, itself or gzipped)."""
    return [copy_in(*find_local(source, ARCHIVES[key], EXTRACTED[key]), root) for key in ARCHIVES]
