"""CIFAR-10 (Krizhevsky, 2009) from the official *binary* version, and ZCA whitening.

Binary format: each batch file is 10,000 records of 3,073 bytes: 1 label byte (0..9), then
3,072 pixel bytes, the 1,024 red values of the 32x32 image in row-major order, then green, then
blue. The pickled Python version is never read.

:func:`load_cifar10` returns images float32 in [0, 1] (pixel / 255) and int64 labels. The images
come in the layout :class:`adamlab.models.CNN` takes, ``layout="NHWC"`` (N, 32, 32, 3), so that
``CNN(rng=rng).forward(load_cifar10()[0][:128])`` works; ``layout="NCHW"`` gives the records' own
order (N, 3, 32, 32). ``whiten_inputs=True`` returns the paper's "whitened inputs" (Section 6.3)
instead: ZCA whitening fitted on the 50,000 training images,

    x_white = (x - mean) @ W,   W = U diag(1 / sqrt(lambda + eps)) U^T,

where U diag(lambda) U^T is the pixel covariance of the training set (pixels in [0, 1]) and eps
(:data:`ZCA_EPS`, finite and > 0) regularises the directions of tiny variance. The fitted mean and
W are cached, in the records' pixel order (channel, row, column); for NHWC output they are
permuted to (row, column, channel) order, which gives the same whitened images, transposed (up to
the rounding of the matrix product).

The test batch: the CI copy (``../shared/data``) has only the five training batches. The loader
works with those alone; ``load_cifar10("test")`` raises MissingDataError when ``test_batch.bin``
is absent, naming the fetch command.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np
import scipy.linalg

from ._store import Checksum, FormatError, MissingDataError, Resource, cache_candidates, cache_lock, \
    copy_in, data_dir, ensure, fetch_command, find_local, offline, read_npz, safe_extract, save_cache, \
    sweep_stale, verify

DATASET = "cifar10"
RECORD = 3073
PIXELS = 3072
PER_BATCH = 10_000
NUM_CLASSES = 10
ZCA_EPS = 1e-2
LAYOUTS = ("NHWC", "NCHW")

# The official tarball has no SHA-256 we could confirm offline; its official MD5 is pinned.
ARCHIVE = Resource(
    "cifar10/cifar-10-binary.tar.gz", Checksum("md5", "c32a1d4ab5d03f1284b67883e8d87530"), DATASET,
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
)
_DIR = "cifar10/cifar-10-batches-bin"
# SHA-256 of the official extracted training batches (shared/data/MANIFEST.md: reproduced
# independently and matching the official git blob ids).
_TRAIN_SHA256 = (
    "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
)
TRAIN = tuple(
    Resource(f"{_DIR}/data_batch_{i}.bin", Checksum("sha256", h), DATASET, size=PER_BATCH * RECORD)
    for i, h in enumerate(_TRAIN_SHA256, start=1)
)
# No SHA-256 of test_batch.bin is known to us; its git blob id (one published source) is pinned.
# A test batch that comes out of the official tarball is also covered by the tarball's MD5.
TEST = Resource(f"{_DIR}/test_batch.bin", Checksum("git-sha1", "e3f3b4653f18f27ada1558cabc3352a3ed1b25cc"),
                DATASET, size=PER_BATCH * RECORD)
META = Resource(f"{_DIR}/batches.meta.txt",
                Checksum("sha256", "558e74b5e208382e186da55784b4bac2cd52e558448e1b5800990fdb28ed8033"),
                DATASET, size=61)
RESOURCES = (ARCHIVE,)
EXTRACTED = TRAIN + (TEST, META)


def parse_records(data: bytes, name: str = "CIFAR-10 batch", expected: int | None = None):
    """Parse binary records into (images uint8 (N, 3, 32, 32), labels int64 (N,)).

    Raises FormatError if the length is not a whole number of 3,073-byte records (truncated),
    if the record count differs from ``expected``, or if a label is outside 0..9.
    """
    if len(data) % RECORD:
        raise FormatError(f"{name}: {len(data)} bytes is not a whole number of {RECORD}-byte "
                          f"records (truncated or not a CIFAR-10 binary batch)")
    n = len(data) // RECORD
    if expected is not None and n != expected:
        raise FormatError(f"{name}: {n} records, expected {expected}")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(n, RECORD)
    labels = rec[:, 0].astype(np.int64)
    if n and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise FormatError(f"{name}: record {bad} has label {labels[bad]}, expected 0..9")
    return rec[:, 1:].reshape(n, 3, 32, 32), labels


def read_batch(path: Path, expected: int | None = None):
    """Read one batch file; it must hold ``expected`` records (default: 10,000)."""
    path = Path(path)
    return parse_records(path.read_bytes(), name=str(path),
                         expected=PER_BATCH if expected is None else expected)


def _extracted(root: Path) -> bool:
    return all(r.path(root).is_file() for r in EXTRACTED)


def _extract(root: Path) -> None:
    """Extract the verified tarball (fetched first if allowed), once however many processes ask."""
    safe_extract(ensure(ARCHIVE, root), root / "cifar10", "cifar-10-batches-bin", DATASET,
                 done=lambda _: _extracted(root))


def _locate(res: Resource, root: Path) -> Path:
    if res.path(root).is_file():
        return verify(res, root)
    if ARCHIVE.path(root).is_file() or not offline():
        _extract(root)
        return verify(res, root)
    what = " (the CIFAR-10 test set)" if res is TEST else ""
    raise MissingDataError(f"{res.path(root)}{what} is missing; run `{fetch_command(DATASET)}`")


def class_names(root: Path | None = None) -> list[str]:
    root = data_dir() if root is None else Path(root)
    lines = _locate(META, root).read_text(encoding="ascii").splitlines()
    return [s for s in lines if s]


def has_test_set(root: Path | None = None) -> bool:
    """True if ``test_batch.bin`` is present (it is not in the CI copy)."""
    root = data_dir() if root is None else Path(root)
    return TEST.path(root).is_file() or ARCHIVE.path(root).is_file()


def load_uint8(split: str = "train", root: Path | None = None):
    """Raw images uint8 (N, 3, 32, 32) and labels int64 of ``split`` ("train" or "test")."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = data_dir() if root is None else Path(root)
    sweep_stale(root / _DIR, folder=root / "cifar10")  # .extract-* folders of killed processes
    resources = TRAIN if split == "train" else (TEST,)
    images = np.empty((PER_BATCH * len(resources), 3, 32, 32), dtype=np.uint8)
    labels = np.empty(PER_BATCH * len(resources), dtype=np.int64)
    for b, res in enumerate(resources):
        x, y = read_batch(_locate(res, root))
        images[b * PER_BATCH:(b + 1) * PER_BATCH] = x
        labels[b * PER_BATCH:(b + 1) * PER_BATCH] = y
    return images, labels


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], without a float64 intermediate."""
    out = np.empty(images.shape, dtype=np.float32)
    np.divide(images, np.float32(255), out=out)
    return out


# ---------------------------------------------------------------------------------------------
# ZCA whitening.


def fit_zca(images: np.ndarray, eps: float = ZCA_EPS, chunk: int = 1024):
    """Fit ZCA on uint8 images (N, ...) with pixels scaled to [0, 1].

    Returns (mean float64 (D,), W float64 (D, D), eigenvalues float64 (D,), ascending). The
    second moment is accumulated chunk by chunk: each chunk, shifted by -128 to [-128, 127], goes
    through a float32 SYRK, which is exact for 1,024 rows (each entry is a sum of at most
    1024 * 128**2 = 2**24 in magnitude, an integer float32 still represents exactly), and the
    sums are kept in float64. No float64 copy of the dataset is made.
    """
    eps = check_eps(eps)
    if images.dtype != np.uint8:
        raise ValueError(f"fit_zca expects uint8 pixels, got {images.dtype}")
    if not 1 <= chunk <= 1024:
        raise ValueError(f"chunk must be in [1, 1024] for an exact float32 accumulation, got {chunk}")
    x = images.reshape(len(images), -1)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"fit_zca needs at least 2 images, got {n}")
    s1 = np.zeros(d, dtype=np.float64)
    s2 = np.zeros((d, d), dtype=np.float64)
    buf = np.empty((chunk, d), dtype=np.float32)
    for start in range(0, n, chunk):
        c = x[start:start + chunk]
        b = buf[:len(c)]
        np.subtract(c, np.float32(128), out=b, dtype=np.float32)
        s1 += b.sum(axis=0, dtype=np.float64)
        s2 += scipy.linalg.blas.ssyrk(1.0, b, trans=1, lower=0)  # upper triangle of b^T b
    s2 = np.triu(s2) + np.triu(s2, 1).T
    m = s1 / n                                   # mean of the shifted pixels
    cov = (s2 / n - np.outer(m, m)) / 255.0**2   # covariance of pixels in [0, 1]
    lam, u = scipy.linalg.eigh(cov, driver="evd")
    lam = np.clip(lam, 0.0, None)
    w = (u / np.sqrt(lam + eps)) @ u.T           # U diag(1/sqrt(lambda + eps)) U^T
    mean = (m + 128.0) / 255.0
    return mean, w, lam


def check_eps(eps) -> float:
    """``eps`` as a float, or ValueError unless it is a finite real number > 0 (``inf`` would
    whiten every image to 0, NaN would give NaN)."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or not eps > 0:
        raise ValueError(f"eps (zca_eps) must be a finite number > 0, got {eps!r}")
    return float(eps)


_CACHE_DIR = "cifar10/cache"


def _zca_relpath(eps: float) -> str:
    return f"{_CACHE_DIR}/zca-eps{float(eps)!r}.npz"


def _zca_cache(root: Path, eps: float) -> Path:
    return Path(root) / _zca_relpath(eps)


def _read_zca(root: Path, eps: float, sources: np.ndarray):
    for p in cache_candidates(root, _zca_relpath(eps)):
        sweep_stale(p.parent, parts=[p])
        z = read_npz(p, "the CIFAR-10 ZCA cache")
        if (z is not None and {"mean", "w", "eigenvalues", "eps", "train_checksums"} <= set(z)
                and z["eps"].item() == eps and np.array_equal(z["train_checksums"], sources)):
            return z["mean"], z["w"], z["eigenvalues"]
    return None


def zca_whitening(eps: float = ZCA_EPS, root: Path | None = None):
    """The ZCA fitted on the training batches: (mean float32 (3072,), W float32 (3072, 3072),
    eigenvalues float64), pixels in the records' (channel, row, column) order. Fitted once per
    eps, then read from ``cifar10/cache/zca-eps<eps>.npz`` (or from ``_store.fallback_dir(root)``
    when the data directory cannot be written; if neither can be written, it is fitted on every
    call, with one warning).

    The cache stores eps exactly and the checksums of the training batches it was fitted on; the
    batches are verified on every call, and a cache whose eps or batch checksums differ is
    refitted, as is a corrupt one (with a warning naming it). Processes that ask at once fit once.
    """
    eps = check_eps(eps)
    root = data_dir() if root is None else Path(root)
    sources = np.asarray([str(res.checksum) for res in TRAIN])
    for res in TRAIN:
        _locate(res, root)  # verified (cached by stat) before a fit from them is trusted
    got = _read_zca(root, eps, sources)
    if got is not None:
        return got
    with cache_lock(root, _CACHE_DIR):
        got = _read_zca(root, eps, sources)  # fitted by another process meanwhile?
        if got is not None:
            return got
        images, _ = load_uint8("train", root)
        mean, w, lam = fit_zca(images, eps)
        del images
        mean, w = mean.astype(np.float32), w.astype(np.float32)
        save_cache(root, _zca_relpath(eps), dict(mean=mean, w=w, eigenvalues=lam, eps=np.float64(eps),
                                                 train_checksums=sources))
    return mean, w, lam


def to_layout(mean: np.ndarray, w: np.ndarray, layout: str):
    """The whitening (mean, W) of records-order pixels (C, H, W) re-indexed for ``layout``: for
    NHWC, with p the (H, W, C) -> (C, H, W) index map, mean[p] and W[p][:, p], so that
    (x[p] - mean[p]) @ W[p][:, p] = ((x - mean) @ W)[p]."""
    if layout == "NCHW":
        return mean, w
    p = np.arange(PIXELS).reshape(3, 32, 32).transpose(1, 2, 0).ravel()
    return mean[p], w[np.ix_(p, p)]


def whiten(x: np.ndarray, mean: np.ndarray, w: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Apply (x - mean) @ W in place to float32 images (N, ...) flattened per image; returns x.
    ``mean`` and ``W`` must index the pixels in the order of ``x`` (see :func:`to_layout`).

    ``x`` must be C-contiguous (a transposed view would be reshaped into a copy, and the copy
    whitened instead of ``x``); pass ``np.ascontiguousarray(x)`` otherwise.
    """
    if x.dtype != np.float32:
        raise ValueError(f"whiten expects float32 images, got {x.dtype}")
    if not x.flags.c_contiguous or not x.flags.writeable:
        raise ValueError("whiten works in place and needs a writeable C-contiguous array, got "
                         f"strides {x.strides}; pass np.ascontiguousarray(x)")
    flat = x.reshape(len(x), -1)
    if flat.shape[1] != w.shape[0]:
        raise ValueError(f"images have {flat.shape[1]} values, the whitening matrix {w.shape[0]}")
    for start in range(0, len(flat), chunk):
        block = flat[start:start + chunk] - mean
        np.matmul(block, w, out=flat[start:start + chunk])
    return x


def load_cifar10(split: str = "train", *, layout: str = "NHWC", whiten_inputs: bool = False,
                 zca_eps: float = ZCA_EPS, root: Path | None = None):
    """CIFAR-10 images and labels of one split ("train": 50,000; "test": 10,000).

    Returns (x, y): x float32, (N, 32, 32, 3) with ``layout="NHWC"`` (the default, what
    :class:`adamlab.models.CNN` takes) or (N, 3, 32, 32) with ``layout="NCHW"`` (the records'
    order), in [0, 1], or ZCA-whitened with ``whiten_inputs`` (fitted on the training set, see the
    module docstring); y int64 in 0..9.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'NHWC' (N, 32, 32, 3), as CNN takes, or 'NCHW' "
                         f"(N, 3, 32, 32), got {layout!r}")
    if whiten_inputs:
        zca_eps = check_eps(zca_eps)
    root = data_dir() if root is None else Path(root)
    images, labels = load_uint8(split, root)
    if layout == "NHWC":
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    x = to_float(images)
    del images
    if whiten_inputs:
        mean, w, _ = zca_whitening(zca_eps, root)
        whiten(x, *to_layout(mean, w, layout))
    return x, labels


def fetch(root: Path | None = None) -> list[Path]:
    """Download (if missing), verify and extract the official binary tarball."""
    root = data_dir() if root is None else Path(root)
    have = all(r.path(root).is_file() for r in EXTRACTED)
    paths = [] if have and not ARCHIVE.path(root).is_file() else [ensure(ARCHIVE, root)]
    if paths and not have:
        _extract(root)
    return paths + [verify(r, root) for r in EXTRACTED]


def fetch_from(source: Path, root: Path | None = None) -> list[Path]:
    """Copy and verify CIFAR-10 from the local copy ``source``: the official tarball (then
    extracted), or the extracted batches and ``batches.meta.txt``, each itself or gzipped. The
    test batch is copied when there is one (the CI copy has none; the loader works without it)."""
    root = data_dir() if root is None else Path(root)
    if (Path(source) / ARCHIVE.relpath).is_file():
        copy_in(ARCHIVE, Path(source) / ARCHIVE.relpath, root)
        return fetch(root)
    paths = [copy_in(*find_local(source, res), root) for res in TRAIN + (META,)]
    try:
        paths.append(copy_in(*find_local(source, TEST), root))
    except MissingDataError:
        pass
    return paths
