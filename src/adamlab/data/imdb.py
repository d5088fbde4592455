"""IMDB movie reviews (Maas et al., 2011) as the bag-of-words of the paper's Section 6.1.

Layout (official ``aclImdb_v1.tar.gz``): ``aclImdb/imdb.vocab`` lists the vocabulary, one word a
line, most frequent first, so the rank of a word is its 0-based line number;
``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` are the 50,000 labelled reviews (12,500 a
folder; pos has ratings 7..10, neg 1..4); ``aclImdb/{train,test}/labeledBow.feat`` hold the
official counts in LIBSVM format, one line a review: ``<rating> <index>:<count> ...`` with
0-based indices into ``imdb.vocab``.

Row order, as in ``labeledBow.feat``: the positive reviews by increasing id, then the negative
ones by increasing id. Labels: 1 = positive, 0 = negative.

Features: :func:`load_imdb_bow` keeps the ``num_words`` most frequent words (index <
``num_words``) and returns **binary** features by default (1.0 if the word occurs in the review),
float32 CSR. Why binary: the paper only says "bag-of-words"; counts are heavy-tailed ("the" occurs
56 times in one review) and would give a few features most of the gradient of a logistic
regression, while presence features stay in {0, 1}, a common choice for sentiment bag-of-words
with linear models, and 50% dropout on them (the paper's Section 6.1) keeps that scale.
``binary=False`` gives the raw counts.

Verification: the archive by SHA-256, ``imdb.vocab`` by SHA-256, the 50,000 review files by one
SHA-256 over their ``sha256sum`` listing (:data:`REVIEWS_TREE_SHA256`), and each
``labeledBow.feat`` by its git blob SHA-1 (the only checksum known for it) before it is used. The
cached bag-of-words stores the checksums of the sources it was built from and the tokeniser
version; every load verifies the sources and rebuilds a cache whose record differs.

Tokeniser (used when the ``.feat`` files are absent, e.g. in the repacked copy CI uses). It was
designed from the vocabulary itself (which contains "!", "?", emoticons such as ":)" and "do:",
hyphenated and apostrophe words, accented letters, and no word with a digit and no word ending in
"'s") and checked against official ``.feat`` lines:

1. lowercase; replace each HTML line break ``<br />`` by a space;
2. delete ``'s`` at the end of a word ("it's" -> "it", "bromwell high's" -> "high");
3. a run of two or more hyphens separates words ("pit--or" -> "pit", "or");
4. scan left to right, taking at each position the first that matches:
   an emoticon (eyes ``[:;=8]``, optional nose ``[-o*']``, mouth ``[)(\\][dDpP/:}{@|\\]``, or
   mirrored), a single "!" or "?", or a word: word characters with inner apostrophes or hyphens
   (``\\w([\\w'-]*\\w)?``); everything else is skipped;
5. a token counts if it is in ``imdb.vocab`` (tokens with digits never are: "1st", "e-6").

Measured agreement with official features: all 16 official ``labeledBow.feat`` lines we could
transcribe (train rows 0, 1, 2, 3, 4, 6, 10, 11, 12, 15, 18; test rows 6, 8, 10, 17, 19; they
exercise "!" runs, "--", "'s", digits inside words, accents and a stray control character) are
reproduced exactly, word for word and count for count (``tests/test_data_imdb.py`` checks them
on the real reviews, and measures the agreement again on hand-written ``.feat`` fixtures).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ._store import Checksum, ChecksumError, FormatError, MissingDataError, Resource, cache_candidates, \
    cache_lock, copy_in, copy_tree, data_dir, ensure, fetch_command, file_digest, find_local, offline, \
    read_npz, recorded, remember, safe_extract, save_cache, sweep_stale, verify

log = logging.getLogger(__name__)

DATASET = "imdb"
ARCHIVE = Resource(
    "imdb/aclImdb_v1.tar.gz",
    Checksum("sha256", "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"),
    DATASET, urls=("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
    size=84_125_825,
)
_VOCAB_CHECKSUM = Checksum("sha256", "01a13a306bd9e5a7826b8a0fc25a7a6017f143d86c1582f17857bb731fd252dc")
VOCAB = Resource("imdb/aclImdb/imdb.vocab", _VOCAB_CHECKSUM, DATASET, size=845_980)
VOCAB_BESIDE = Resource("imdb/imdb.vocab", _VOCAB_CHECKSUM, DATASET, size=845_980)
VOCAB_SIZE = 89_527
# SHA-256 of the `sha256sum` listing ("<sha256>  aclImdb/<split>/<pos|neg>/<id>_<rating>.txt\n",
# sorted by path) of the 50,000 labelled review files of the official archive.
REVIEWS_TREE_SHA256 = "b155ae18c4016500d64b7ea091f3f04c4ea9e702ab3bdb2b4aa0effbd4da11c6"
REVIEWS_PER_FOLDER = 12_500
# The official labeledBow.feat files (in the official archive, not in the CI copy). Only their
# git blob ids are known (shared/data/MANIFEST.md); a .feat is used only after it matched.
FEAT_CHECKSUMS = {
    "train": Checksum("git-sha1", "973a6ddbbc1291dc6c88881db34cdc23d795ca63"),
    "test": Checksum("git-sha1", "7997f3f6f5d8af74b57f59f6a69cde5b4904fa14"),
}
RESOURCES = (ARCHIVE,)
SPLITS = ("train", "test")
_TREE_KEY = "imdb/aclImdb/{train,test}/{pos,neg}/*.txt"  # its entry in the verified-state cache

TOKENISER_VERSION = 1
_EMOTICON = (r"[<>]?[:;=8][\-o*']?[)\](\[dDpP/:}{@|\\]"
             r"|[)\](\[dDpP/:}{@|\\][\-o*']?[:;=8][<>]?")
_SEP = "\x01"  # review separator used by the bulk tokeniser; never inside a review
TOKEN_RE = re.compile(rf"{_EMOTICON}|[!?]|\w(?:[\w'\-]*\w)?|{_SEP}")
_BR_RE = re.compile(r"<br\s*/?>")
_POSSESSIVE_RE = re.compile(r"'s\b")
_DASHES_RE = re.compile(r"--+")
_NAME_RE = re.compile(r"^(\d+)_(\d+)\.txt$")


class IMDB(NamedTuple):
    x_train: sp.csr_matrix
    y_train: np.ndarray
    x_test: sp.csr_matrix
    y_test: np.ndarray


def _clean(text: str) -> str:
    text = _BR_RE.sub(" ", text.lower())
    text = _POSSESSIVE_RE.sub(" ", text)
    return _DASHES_RE.sub(" ", text)


def tokenize(text: str) -> list[str]:
    """Split one review into tokens (rules 1-4 of the module docstring)."""
    return TOKEN_RE.findall(_clean(text.replace(_SEP, " ")))


def read_vocab(path: Path) -> list[str]:
    """The words of ``imdb.vocab`` in rank order (line i = index i)."""
    with open(path, encoding="utf-8") as f:
        words = f.read().split("\n")
    if words and words[-1] == "":
        words.pop()
    if len(set(words)) != len(words):
        raise FormatError(f"{path}: duplicate entries in the vocabulary")
    return words


class _Index(dict):
    """word -> rank; out-of-vocabulary words give -1 (a C-level lookup, no Python call per hit)."""

    def __missing__(self, key):
        return -1


def bag_of_words(texts: list[str], vocab: list[str], chunk: int = 2500) -> sp.csr_matrix:
    """Count matrix (len(texts), len(vocab)), int32 CSR with sorted indices.

    Reviews go through the regex in blocks of ``chunk`` (joined by a separator token, one scan
    a block) and the counts are built with numpy, so 25,000 reviews take a few seconds and the
    token strings of only one block are alive at a time.
    """
    index = _Index((w, i) for i, w in enumerate(vocab))
    index[_SEP] = -2
    v = len(vocab)
    keys, counts = [], []
    for start in range(0, len(texts), chunk):
        block = texts[start:start + chunk]
        joined = f" {_SEP} ".join(t.replace(_SEP, " ") for t in block)
        tokens = TOKEN_RE.findall(_clean(joined))
        ids = np.fromiter(map(index.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        del tokens
        rows = start + np.cumsum(ids == -2)
        keep = ids >= 0
        k, c = np.unique(rows[keep] * v + ids[keep], return_counts=True)
        keys.append(k)
        counts.append(c)
    key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    r, col = np.divmod(key, v)
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=len(texts)), out=indptr[1:])
    data = np.concatenate(counts).astype(np.int32) if counts else np.zeros(0, dtype=np.int32)
    return sp.csr_matrix((data, col.astype(np.int32), indptr), shape=(len(texts), v))


def parse_feat_lines(lines, vocab_size: int, name: str = "labeledBow.feat"):
    """Parse LIBSVM lines ``<rating> <index>:<count> ...`` into (ratings int64, counts CSR int32).

    Raises FormatError naming the line on a malformed pair, an index outside the vocabulary,
    a non-positive count or a repeated index.
    """
    ratings, indptr, indices, data = [], [0], [], []
    for n, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            raise FormatError(f"{name} line {n}: empty line")
        try:
            ratings.append(int(parts[0]))
            pairs = [p.split(":") for p in parts[1:]]
            idx = [int(i) for i, _ in pairs]
            cnt = [int(c) for _, c in pairs]
        except ValueError as e:
            raise FormatError(f"{name} line {n}: not '<rating> <index>:<count> ...' ({e})") from None
        if idx and (min(idx) < 0 or max(idx) >= vocab_size):
            raise FormatError(f"{name} line {n}: index outside 0..{vocab_size - 1}")
        if cnt and min(cnt) < 1:
            raise FormatError(f"{name} line {n}: counts must be positive")
        if len(set(idx)) != len(idx):
            raise FormatError(f"{name} line {n}: repeated index")
        order = np.argsort(idx, kind="stable")
        indices.extend(np.asarray(idx, dtype=np.int64)[order].tolist())
        data.extend(np.asarray(cnt, dtype=np.int64)[order].tolist())
        indptr.append(len(indices))
    counts = sp.csr_matrix((np.asarray(data, dtype=np.int32), np.asarray(indices, dtype=np.int32),
                            np.asarray(indptr, dtype=np.int64)), shape=(len(ratings), vocab_size))
    return np.asarray(ratings, dtype=np.int64), counts


def read_feat(path: Path, vocab_size: int):
    with open(path, encoding="ascii") as f:
        return parse_feat_lines(f.read().splitlines(), vocab_size, name=str(path))


class Reviews(NamedTuple):
    paths: list[Path]
    ids: np.ndarray
    ratings: np.ndarray
    labels: np.ndarray


def list_reviews(split_dir: Path) -> Reviews:
    """The labelled reviews of one split folder in ``labeledBow.feat`` order (pos, then neg,
    each by increasing id). Hidden files (``.DS_Store`` and the like) are skipped, so they are
    not part of the tree digest either; any other file not named ``<id>_<rating>.txt`` is an
    error naming it."""
    paths, ids, ratings, labels = [], [], [], []
    for sub, label in (("pos", 1), ("neg", 0)):
        folder = Path(split_dir) / sub
        if not folder.is_dir():
            raise MissingDataError(f"{folder} is missing; run `{fetch_command(DATASET)}`")
        entries = []
        for name in os.listdir(folder):
            if name.startswith("."):  # .DS_Store, ._* (macOS), .directory: not part of the dataset
                continue
            m = _NAME_RE.match(name)
            if m is None:
                raise FormatError(f"{folder / name}: not an '<id>_<rating>.txt' review file; move it "
                                  f"out of {folder} (hidden files, named '.*', are ignored)")
            entries.append((int(m.group(1)), int(m.group(2)), name))
        entries.sort()
        for i, rating, name in entries:
            if (label == 1 and not 7 <= rating <= 10) or (label == 0 and not 1 <= rating <= 4):
                raise FormatError(f"{folder / name}: rating {rating} does not fit folder {sub}/")
            paths.append(folder / name)
            ids.append(i)
            ratings.append(rating)
            labels.append(label)
    return Reviews(paths, np.asarray(ids, dtype=np.int64), np.asarray(ratings, dtype=np.int64),
                   np.asarray(labels, dtype=np.int64))


def read_texts(paths, digests: dict | None = None, base: Path | None = None) -> list[str]:
    """Read UTF-8 reviews; if ``digests`` is given, record each file's SHA-256 by path under base."""
    texts = []
    for p in paths:
        raw = Path(p).read_bytes()
        if digests is not None:
            digests[Path(p).relative_to(base).as_posix()] = hashlib.sha256(raw).hexdigest()
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise FormatError(f"{p}: not UTF-8 text ({e})") from None
    return texts


def tree_digest(digests: dict) -> str:
    listing = "".join(f"{h}  {p}\n" for p, h in sorted(digests.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


class Agreement(NamedTuple):
    rows_equal: int
    rows: int
    counts_equal: int  # sum over rows of min(official, ours) per word
    counts: int        # total official count

    @property
    def row_fraction(self) -> float:
        return self.rows_equal / self.rows if self.rows else 1.0


def feat_agreement(official: sp.csr_matrix, ours: sp.csr_matrix) -> Agreement:
    """How far our counts match the official ``.feat`` counts, row by row."""
    if official.shape != ours.shape:
        raise FormatError(f"official features {official.shape} vs ours {ours.shape}: mismatched counts")
    diff = (official - ours).tocsr()
    diff.eliminate_zeros()
    rows_equal = int(np.sum(np.diff(diff.indptr) == 0))
    common = official.minimum(ours)
    return Agreement(rows_equal, official.shape[0], int(common.sum()), int(official.sum()))


# ---------------------------------------------------------------------------------------------
# Locating files, building and caching.


def _acl_dir(root: Path) -> Path:
    return root / "imdb" / "aclImdb"


def _vocab(root: Path) -> tuple[Path, Resource]:
    for res in (VOCAB, VOCAB_BESIDE):
        if res.path(root).is_file():
            return verify(res, root), res
    raise MissingDataError(f"{VOCAB.path(root)} is missing; run `{fetch_command(DATASET)}`")


def _have_extracted(root: Path) -> bool:
    acl = _acl_dir(root)
    return all((acl / s / c).is_dir() for s in ("train", "test") for c in ("pos", "neg"))


def prepare(root: Path | None = None) -> Path:
    """Make sure ``imdb/aclImdb`` holds the extracted official files; return that folder.

    Uses an extracted tree if there is one, else extracts a verified ``aclImdb_v1.tar.gz``,
    fetching it first when allowed. Processes that prepare at once extract it once: the others
    wait for the lock and find the tree complete.
    """
    root = data_dir() if root is None else Path(root)
    if not _have_extracted(root):
        if not ARCHIVE.path(root).is_file() and offline():
            raise MissingDataError(
                f"{_acl_dir(root)} (the extracted reviews) and {ARCHIVE.path(root)} are missing; "
                f"run `{fetch_command(DATASET)}`")
        safe_extract(ensure(ARCHIVE, root), root / "imdb", "aclImdb", DATASET,
                     done=lambda _: _have_extracted(root))
    _vocab(root)
    return _acl_dir(root)


_CACHE_DIR = "imdb/cache"


def _cache_relpath(split: str, source: str) -> str:
    return f"{_CACHE_DIR}/bow-{split}-{source}-v{TOKENISER_VERSION}.npz"


def _cache_path(root: Path, split: str, source: str) -> Path:
    return Path(root) / _cache_relpath(split, source)


class SplitBow(NamedTuple):
    source: str              # "feat" (official labeledBow.feat) or "text" (our tokeniser)
    counts: sp.csr_matrix    # int32, (reviews, vocabulary)
    reviews: Reviews
    agreement: Agreement | None


def feat_resource(split: str) -> Resource:
    """The official ``labeledBow.feat`` of ``split`` with its pinned git blob id."""
    return Resource(f"imdb/aclImdb/{split}/labeledBow.feat", FEAT_CHECKSUMS[split], DATASET)


def check_feat(path: Path, checksum: Checksum) -> None:
    """Raise ChecksumError naming ``path`` unless it has the pinned ``checksum``."""
    got = file_digest(path, checksum)
    if got != checksum.hexdigest:
        raise ChecksumError(
            f"{path}: {checksum.algo} is {got}, expected {checksum.hexdigest}: not the official "
            f"labeledBow.feat, so it is not used; delete it (the counts are then built from the "
            f"reviews) or run `{fetch_command(DATASET)}` for the official archive")


def build_split(split_dir: Path, vocab: list[str], digests: dict | None = None,
                feat_checksum: Checksum | None = None) -> SplitBow:
    """Counts of one split folder: from ``labeledBow.feat`` if present (after checking its
    checksum, by default the pinned official one of this split, and its line count and ratings
    against the review files, and measuring our tokeniser's agreement with it), else from the
    review texts."""
    split_dir = Path(split_dir)
    feat = split_dir / "labeledBow.feat"
    has_feat = feat.is_file()
    if has_feat:
        check_feat(feat, FEAT_CHECKSUMS[split_dir.name] if feat_checksum is None else feat_checksum)
    rev = list_reviews(split_dir)
    texts = read_texts(rev.paths, digests, base=split_dir.parent.parent)
    ours = bag_of_words(texts, vocab)
    if not has_feat:
        return SplitBow("text", ours, rev, None)
    ratings, official = read_feat(feat, len(vocab))
    if len(ratings) != len(rev.paths):
        raise FormatError(f"{feat}: {len(ratings)} lines but {len(rev.paths)} review files")
    if not np.array_equal(ratings, rev.ratings):
        bad = int(np.argmax(ratings != rev.ratings))
        raise FormatError(f"{feat} line {bad + 1}: rating {ratings[bad]} but review file "
                          f"{rev.paths[bad].name} (row order or files differ)")
    agreement = feat_agreement(official, ours)
    log.info("IMDB %s: tokeniser reproduces %d of %d official .feat rows (%.4f of counts)",
             split_dir.name, agreement.rows_equal, agreement.rows,
             agreement.counts_equal / max(agreement.counts, 1))
    return SplitBow("feat", official, rev, agreement)


def tree_stamp(paths, base: Path) -> str:
    """One digest over the stat (size, mtime, inode, device, ctime) of every file in ``paths``:
    while it is unchanged, a recorded check of their contents still holds."""
    h = hashlib.sha256()
    skip = len(os.fspath(base)) + 1  # plain string slicing: 50,000 pathlib calls cost ~0.5 s
    for p in paths:
        p = os.fspath(p)
        st = os.stat(p)
        h.update(f"{p[skip:]} {st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_dev} "
                 f"{st.st_ctime_ns}\n".encode())
    return h.hexdigest()


def _accept_tree(root: Path, digests: dict, paths, stamp: str) -> None:
    """Compare the reviews' listing digest with the pinned one, then remember it under ``stamp``
    (taken before the files were read; a tree that changed meanwhile is not remembered)."""
    acl = _acl_dir(root)
    got = tree_digest(digests)
    if got != REVIEWS_TREE_SHA256:
        raise ChecksumError(
            f"the review files under {acl} differ from the official ones ({len(digests)} files, "
            f"tree sha256 {got}, expected {REVIEWS_TREE_SHA256}); delete {acl} and run "
            f"`{fetch_command(DATASET)}`")
    if tree_stamp(paths, acl.parent) != stamp:
        raise ChecksumError(f"the review files under {acl} changed while they were being verified; "
                            f"load them again once nothing writes to them")
    remember(root, _TREE_KEY, [stamp], f"sha256:{REVIEWS_TREE_SHA256}")


def verify_reviews(root: Path | None = None) -> dict[str, Reviews]:
    """Check the 50,000 labelled reviews against :data:`REVIEWS_TREE_SHA256`, one SHA-256 over
    their ``sha256sum`` listing; return them by split.

    The result is remembered under a digest of the files' stats, so a later call only lists and
    stats the files; any change (even a same-size edit with its mtime restored) re-hashes them.
    Raises MissingDataError if a folder is missing and ChecksumError if the tree differs.
    """
    root = data_dir() if root is None else Path(root)
    acl = _acl_dir(root)
    reviews = {split: list_reviews(acl / split) for split in SPLITS}
    paths = [p for r in reviews.values() for p in r.paths]
    stamp = tree_stamp(paths, acl.parent)
    if recorded(root, _TREE_KEY, [stamp], f"sha256:{REVIEWS_TREE_SHA256}"):
        return reviews
    digests: dict[str, str] = {}
    for p in paths:
        digests[p.relative_to(acl.parent).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    _accept_tree(root, digests, paths, stamp)
    return reviews


def _sources(root: Path, source: str, split: str) -> str:
    """What a cached bag-of-words of ``split`` depends on, after verifying each of those files:
    the vocabulary, the review tree, the ``.feat`` (if the counts came from it), the tokeniser."""
    _, vocab_res = _vocab(root)
    verify_reviews(root)
    feat = ""
    if source == "feat":
        verify(feat_resource(split), root)
        feat = str(FEAT_CHECKSUMS[split])
    return json.dumps({"vocab": str(vocab_res.checksum), "reviews": f"sha256:{REVIEWS_TREE_SHA256}",
                       "feat": feat, "tokeniser_version": TOKENISER_VERSION,
                       "columns": "full vocabulary, counts"}, sort_keys=True)


def _build_caches(root: Path) -> dict[str, dict]:
    """Build the bag-of-words of both splits; save each as a cache (in the data directory, or its
    fallback folder, or nowhere, see ``_store.save_cache``); return the arrays by split."""
    acl = prepare(root)
    vocab_path, _ = _vocab(root)
    vocab = read_vocab(vocab_path)
    paths = [p for split in SPLITS for p in list_reviews(acl / split).paths]
    stamp = tree_stamp(paths, acl.parent)
    digests: dict[str, str] = {}
    built = {split: build_split(acl / split, vocab, digests) for split in SPLITS}
    _accept_tree(root, digests, paths, stamp)
    out = {}
    for split, (source, counts, rev, agreement) in built.items():
        extra = {} if agreement is None else {"agreement": np.asarray(agreement, dtype=np.int64)}
        out[split] = dict(indptr=counts.indptr.astype(np.int64), indices=counts.indices.astype(np.int32),
                          data=counts.data.astype(np.int32), shape=np.asarray(counts.shape, dtype=np.int64),
                          labels=rev.labels, ratings=rev.ratings, ids=rev.ids, source=np.asarray(source),
                          sources=np.asarray(_sources(root, source, split)), **extra)
        save_cache(root, _cache_relpath(split, source), out[split])
    return out


def _cache_source(root: Path, split: str) -> str:
    """Official counts win once present."""
    return "feat" if (_acl_dir(root) / split / "labeledBow.feat").is_file() else "text"


def _find_cache(root: Path, split: str) -> Path | None:
    """The cache file of ``split``: in the data directory, else in its fallback folder."""
    for p in cache_candidates(root, _cache_relpath(split, _cache_source(root, split))):
        if p.is_file():
            return p
    return None


def _from_arrays(z: dict, root: Path, split: str):
    """(counts, labels, ratings, agreement) from cached arrays built from the current sources,
    else None."""
    if "sources" not in z or "source" not in z:
        return None
    if str(z["sources"]) != _sources(root, str(z["source"]), split):
        log.info("IMDB %s: the cache was built from other sources; rebuilding it", split)
        return None
    shape = tuple(int(s) for s in z["shape"])
    counts = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
    agreement = Agreement(*(int(v) for v in z["agreement"])) if "agreement" in z else None
    return counts, z["labels"], z["ratings"], agreement


def _read_cache(root: Path, split: str):
    """The cached split if a readable cache built from the current sources exists, else None.
    A corrupt cache is named in a warning and skipped (then rebuilt)."""
    relpath = _cache_relpath(split, _cache_source(root, split))
    candidates = cache_candidates(root, relpath)
    for p in candidates:
        sweep_stale(p.parent, parts=[p])  # the lock of cache_lock(<that location>, _CACHE_DIR)
        z = read_npz(p, f"the IMDB {split} bag-of-words cache")
        got = None if z is None else _from_arrays(z, root, split)
        if got is not None:
            return got
    return None


def _load_splits(splits, root: Path | None) -> dict:
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = data_dir() if root is None else Path(root)
    sweep_stale(_acl_dir(root), folder=root / "imdb")  # .extract-* folders of killed processes
    got = {split: _read_cache(root, split) for split in splits}
    if any(v is None for v in got.values()):
        with cache_lock(root, _CACHE_DIR):
            got = {split: got[split] or _read_cache(root, split) for split in splits}  # built meanwhile?
            if any(v is None for v in got.values()):
                built = _build_caches(root)
                for split in splits:
                    if got[split] is None:
                        got[split] = _from_arrays(built[split], root, split)
                    if got[split] is None:
                        raise FormatError(f"the IMDB {split} bag-of-words does not match its sources "
                                          f"right after it was built")
    return got


def _load_split(split: str, root: Path | None):
    return _load_splits((split,), root)[split]


def load_counts(split: str, root: Path | None = None):
    """Full-vocabulary count matrix (int32 CSR, 25,000 x 89,527), labels, ratings of one split.

    Built once from ``labeledBow.feat`` when present, else from the review texts, then cached as
    ``imdb/cache/bow-<split>-<source>-v<n>.npz`` (plain arrays, read with allow_pickle=False), or
    in ``_store.fallback_dir(root)`` when the data directory cannot be written. Every load
    verifies the sources (vocabulary, review tree, ``.feat``; cheap once their check is recorded)
    and compares them with the ones stored in the cache; a cache built from other sources or
    another tokeniser version is rebuilt, and so is a corrupt one (truncated or altered), with a
    warning naming it. Processes that load at once build it once (under a lock).
    """
    counts, labels, ratings, _ = _load_split(split, root)
    return counts, labels, ratings


def cached_agreement(split: str, root: Path | None = None) -> Agreement | None:
    """Our tokeniser's agreement with the official ``.feat`` rows of ``split``, as measured when
    the cache was built from them; None if the cache was built from the texts (no ``.feat``)."""
    return _load_split(split, root)[3]


def restrict(counts: sp.csr_matrix, num_words: int, binary: bool) -> sp.csr_matrix:
    """Keep the columns < num_words (the most frequent words) as a float32 CSR."""
    keep = counts.indices < num_words
    csum = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    indptr = csum[counts.indptr]
    indices = counts.indices[keep]
    data = np.ones(len(indices), dtype=np.float32) if binary else counts.data[keep].astype(np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(counts.shape[0], num_words))


def load_imdb_bow(num_words: int = 10_000, *, binary: bool = True, root: Path | None = None) -> IMDB:
    """The paper's IMDB bag-of-words (Section 6.1): 25,000 train and 25,000 test reviews.

    Returns ``IMDB(x_train, y_train, x_test, y_test)``: x float32 CSR (25,000, num_words) over the
    ``num_words`` most frequent words, binary presence (default) or counts; y int64, 1 = positive.
    """
    if not isinstance(num_words, (int, np.integer)) or not 1 <= num_words <= VOCAB_SIZE:
        raise ValueError(f"num_words must be an integer in [1, {VOCAB_SIZE}], got {num_words!r}")
    out = []
    for split, (counts, labels, _, _) in _load_splits(SPLITS, root).items():
        out += [restrict(counts, int(num_words), binary), labels]
    return IMDB(*out)


def fetch(root: Path | None = None) -> list[Path]:
    """Download (if missing), verify and extract the official archive; verify the vocabulary,
    the review tree and any ``labeledBow.feat``."""
    root = data_dir() if root is None else Path(root)
    paths = [] if _have_extracted(root) and not ARCHIVE.path(root).is_file() else [ensure(ARCHIVE, root)]
    acl = prepare(root)
    verify_reviews(root)
    feats = [verify(feat_resource(split), root) for split in SPLITS
             if feat_resource(split).path(root).is_file()]
    return paths + [acl] + feats


def fetch_from(source: Path, root: Path | None = None) -> list[Path]:
    """Copy and verify IMDB from the local copy ``source``: the official archive (then
    extracted), else the reviews as an extracted ``imdb/aclImdb/`` tree or in another tarball
    under ``imdb/`` whose top folder is ``aclImdb/`` (a repack, as in the CI copy), and
    ``imdb.vocab`` (in ``aclImdb/`` or beside it, itself or gzipped); any ``labeledBow.feat``
    too. The reviews are verified by their tree checksum, as after a download; a tree that
    fails it is removed again."""
    source = Path(source)
    root = data_dir() if root is None else Path(root)
    if (source / ARCHIVE.relpath).is_file():
        copy_in(ARCHIVE, source / ARCHIVE.relpath, root)
        return fetch(root)
    origin = None
    if not _have_extracted(root):
        done = lambda _: _have_extracted(root)  # noqa: E731
        if _have_extracted(source):
            origin = _acl_dir(source)
            copy_tree(origin, root / "imdb", "aclImdb", done)
        else:
            tarballs = sorted(p for pattern in ("*.tar.gz", "*.tgz", "*.tar")
                              for p in (source / "imdb").glob(pattern))
            if not tarballs:
                raise MissingDataError(f"{source} holds neither {ARCHIVE.relpath}, nor the "
                                       f"reviews in imdb/aclImdb/, nor a tarball of them in imdb/")
            origin = tarballs[0]
            safe_extract(origin, root / "imdb", "aclImdb", DATASET, done)
    try:
        verify_reviews(root)
    except ChecksumError:
        if origin is None:
            raise
        shutil.rmtree(_acl_dir(root), ignore_errors=True)
        raise ChecksumError(f"the reviews in {origin} are not the official ones (their tree "
                            f"checksum differs); nothing was kept: replace it with a good copy")
    vocab = copy_in(VOCAB, find_local(source, VOCAB, VOCAB_BESIDE)[1], root)
    feats = []
    for split in SPLITS:
        try:
            feats.append(copy_in(*find_local(source, feat_resource(split)), root))
        except MissingDataError:
            pass
    return [vocab, _acl_dir(root)] + feats
