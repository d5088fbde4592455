"""The paper's datasets: MNIST, IMDB bag-of-words and CIFAR-10, fetched, verified and cached.

- :func:`load_mnist` -- official IDX files (:mod:`adamlab.data.mnist`);
- :func:`load_imdb_bow` -- aclImdb reviews as a sparse bag-of-words (:mod:`adamlab.data.imdb`);
- :func:`load_cifar10` -- official binary batches, optional ZCA whitening (:mod:`adamlab.data.cifar10`).

Files live in :func:`data_dir` (``$ADAMLAB_DATA`` or a per-user cache directory), are verified
against pinned checksums, and are fetched on first use unless ``ADAMLAB_OFFLINE=1``
(``adamlab data fetch {mnist,imdb,cifar10,all}``, or ``--from DIR`` to copy them from a local
copy of the official files; ``adamlab data check [dataset ...]`` lists what is there and exits
non-zero unless every dataset asked for is complete and verified).
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

__all__ = ["load_mnist", "load_imdb_bow", "load_cifar10", "data_dir", "fetch", "fetch_from", "check", "problems",
           "DataError", "MissingDataError", "ChecksumError", "FormatError", "FetchError", "DATASETS"]


def _names(name: str) -> list[str]:
    names = list(DATASETS) if name == "all" else [name]
    for n in names:
        if n not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)} or 'all', got {name!r}")
    return names


def fetch(name: str, root: Path | None = None) -> list[Path]:
    """Fetch and verify one dataset (``mnist``, ``imdb``, ``cifar10``) or ``all``."""
    return [p for n in _names(name) for p in DATASETS[n].fetch(root)]


def fetch_from(name: str, source: Path, root: Path | None = None) -> list[Path]:
    """Build the data directory's copy of one dataset (or ``all``) from a local copy ``source``
    of the official files, verified as a download is (``adamlab data fetch --from DIR``).

    ``source`` is laid out as the data directory (``mnist/``, ``imdb/``, ``cifar10/``); any file
    may be gzipped (``<name>.gz``), and the IMDB reviews may come in a repacked tarball. Nothing
    there is written. See each module's ``fetch_from`` for what it takes.
    """
    source = Path(source)
    if not source.is_dir():
        raise MissingDataError(f"the local copy {source} is not a folder")
    return [p for n in _names(name) for p in DATASETS[n].fetch_from(source, root)]


class Status(NamedTuple):
    dataset: str
    path: str
    status: str   # "verified", "missing" or "CORRUPT: <reason>"
    note: str = ""
    required: bool = True  # needed for the dataset to load offline (else optional)


def _status(res, root: Path, note: str = "", required: bool = True) -> Status:
    if not res.path(root).is_file():
        return Status(res.dataset, res.relpath, "missing", note, required)
    try:
        verify(res, root)
        return Status(res.dataset, res.relpath, "verified", note, required)
    except ChecksumError as e:
        return Status(res.dataset, res.relpath, f"CORRUPT: {e}", note, required)


def check(root: Path | None = None, datasets=None) -> list[Status]:
    """What is present and verified, file by file (archives and extracted forms), for the
    ``datasets`` named (default: all). Each row says whether it is required: an archive is
    required when its extracted files are absent (they are then extracted from it on first use)
    and optional otherwise; the ``labeledBow.feat`` files are always optional."""
    root = data_dir() if root is None else Path(root)
    names = list(DATASETS) if datasets is None else list(datasets)
    for n in names:
        if n not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {n!r}")
    rows = []
    if "mnist" in names:
        for key in mnist.ARCHIVES:
            if mnist.EXTRACTED[key].path(root).is_file() and not mnist.ARCHIVES[key].path(root).is_file():
                rows.append(_status(mnist.EXTRACTED[key], root, "extracted IDX"))
            else:
                rows.append(_status(mnist.ARCHIVES[key], root))
    if "imdb" in names:
        from_archive = not imdb._have_extracted(root) and imdb.ARCHIVE.path(root).is_file()
        rows.append(_status(imdb.ARCHIVE, root, "official archive (optional once extracted)",
                            required=from_archive))
        vocab = imdb.VOCAB_BESIDE if imdb.VOCAB_BESIDE.path(root).is_file() else imdb.VOCAB
        rows.append(_status(vocab, root, "in the archive" if from_archive else "", required=not from_archive))
        rows.append(_imdb_tree_status(root)._replace(required=not from_archive))
        for split in imdb.SPLITS:
            rows.append(_status(imdb.feat_resource(split), root, "official counts, git blob sha1 (optional)",
                                required=False))
    if "cifar10" in names:
        from_archive = cifar10.ARCHIVE.path(root).is_file() and not cifar10._extracted(root)
        rows.append(_status(cifar10.ARCHIVE, root, "official archive, md5 (optional once extracted)",
                            required=from_archive))
        for res in cifar10.TRAIN + (cifar10.META,):
            rows.append(_status(res, root, "in the archive" if from_archive else "", required=not from_archive))
        rows.append(_status(cifar10.TEST, root, "test set" + (", in the archive" if from_archive else ""),
                            required=not from_archive))
    return rows


def problems(rows: list[Status]) -> dict[str, list[Status]]:
    """For each dataset in ``rows``, the rows that keep it from loading offline: required and not
    verified, or corrupt (a corrupt optional file is refused when found, so it counts too).
    An empty list means the dataset is complete and verified."""
    out: dict[str, list[Status]] = {}
    for r in rows:
        bad = r.status.startswith("CORRUPT") or (r.required and r.status != "verified")
        out.setdefault(r.dataset, [])
        if bad:
            out[r.dataset].append(r)
    return out


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
