"""The paper's datasets: MNIST, IMDB bag-of-words and CIFAR-10, fetched, verified and cached.

- :func:`load_mnist` -- official IDX files (:mod:`adamlab.data.mnist`);
- :func:`load_imdb_bow` -- aclImdb reviews as a sparse bag-of-words (:mod:`adamlab.data.imdb`);
- :func:`load_cifar10` -- official binary batches, optional ZCA whitening (:mod:`adamlab.data.cifar10`).

Files live in :func:`data_dir` (``$ADAMLAB_DATA`` or a per-user cache directory), are verified
against pinned checksums, and are fetched on first use unless ``ADAMLAB_OFFLINE=1``
(``adamlab data fetch {mnist,imdb,cifar10,all}``; ``adamlab data check`` lists what is there).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from . import cifar10, imdb, mnist
from ._store import ChecksumError, DataError, FetchError, FormatError, MissingDataError, data_dir, verify
from .cifar10 import load_cifar10
from .imdb import load_imdb_bow
from .mnist import load_mnist

DATASETS = {"mnist": mnist, "imdb": imdb, "cifar10": cifar10}

__all__ = ["load_mnist", "load_imdb_bow", "load_cifar10", "data_dir", "fetch", "check",
           "DataError", "MissingDataError", "ChecksumError", "FormatError", "FetchError", "DATASETS"]


def fetch(name: str, root: Path | None = None) -> list[Path]:
    """Fetch and verify one dataset (``mnist``, ``imdb``, ``cifar10``) or ``all``."""
    names = list(DATASETS) if name == "all" else [name]
    for n in names:
        if n not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)} or 'all', got {name!r}")
    return [p for n in names for p in DATASETS[n].fetch(root)]


class Status(NamedTuple):
    dataset: str
    path: str
    status: str   # "verified", "missing" or "CORRUPT: <reason>"
    note: str = ""


def _status(res, root: Path, note: str = "") -> Status:
    if not res.path(root).is_file():
        return Status(res.dataset, res.relpath, "missing", note)
    try:
        verify(res, root)
        return Status(res.dataset, res.relpath, "verified", note)
    except ChecksumError as e:
        return Status(res.dataset, res.relpath, f"CORRUPT: {e}", note)


def check(root: Path | None = None) -> list[Status]:
    """What is present and verified, file by file (archives and extracted forms)."""
    root = data_dir() if root is None else Path(root)
    rows = []
    for key in mnist.ARCHIVES:
        if mnist.EXTRACTED[key].path(root).is_file() and not mnist.ARCHIVES[key].path(root).is_file():
            rows.append(_status(mnist.EXTRACTED[key], root, "extracted IDX"))
        else:
            rows.append(_status(mnist.ARCHIVES[key], root))
    rows.append(_status(imdb.ARCHIVE, root, "official archive (optional once extracted)"))
    vocab = imdb.VOCAB_BESIDE if imdb.VOCAB_BESIDE.path(root).is_file() else imdb.VOCAB
    rows.append(_status(vocab, root))
    rows.append(_imdb_tree_status(root))
    for split in imdb.SPLITS:
        rows.append(_status(imdb.feat_resource(split), root, "official counts, git blob sha1 (optional)"))
    rows.append(_status(cifar10.ARCHIVE, root, "official archive, md5 (optional once extracted)"))
    for res in cifar10.TRAIN + (cifar10.META,):
        rows.append(_status(res, root))
    rows.append(_status(cifar10.TEST, root, "test set"))
    return rows


def _imdb_tree_status(root: Path) -> Status:
    rel = imdb._TREE_KEY
    if not imdb._have_extracted(root):
        return Status("imdb", rel, "missing", "50,000 labelled reviews")
    try:
        reviews = imdb.verify_reviews(root)
    except DataError as e:
        return Status("imdb", rel, f"CORRUPT: {e}")
    n = sum(len(r.paths) for r in reviews.values())
    return Status("imdb", rel, "verified", f"{n} reviews, tree sha256")
