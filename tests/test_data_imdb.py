"""IMDB: the tokeniser, the .feat parser and the bag-of-words on tiny files written in the
official aclImdb layout, the tokeniser's agreement with hand-written and official .feat lines,
and the real data."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from adamlab.data import _store, imdb
from adamlab.data._store import DataWarning, FormatError, MissingDataError

from conftest import at_once, listing, log_calls, missing

# A tiny vocabulary in imdb.vocab format (rank = line).
VOCAB = ["the", "and", "a", "!", "?", "movie", "it", "don't", "high", "teachers", "or", "pit",
         ":)", "do:", "sci-fi", "cliché", "br", "good", "s", "e", "st", "is", "not"]

# Tiny reviews in the official layout, and the .feat lines for them, written by hand from the
# documented rules in the official LIBSVM format (<rating> <index>:<count>, indices 0-based).
REVIEWS = {
    "train/pos/0_9.txt": "Bromwell High's satire is good!!! It's a movie... <br /><br />"
                         "The teachers' pit--or not? :)",
    "train/pos/1_7.txt": "Do: a Sci-Fi cliché, and the 1st E-6 movie; it is 10/10 and don't miss it.",
    "train/neg/0_2.txt": "Not good. Not good at all?! The movie's a mess :( and s... 8) ok",
    "train/neg/3_4.txt": "It is not a movie, it is a BR tag<br />test.",
    "train/neg/10_1.txt": "The the THE... and--and",
    "test/pos/0_10.txt": "Good!",
    "test/neg/0_3.txt": "Not good?",
}
FEAT = {
    "train": ["9 0:1 2:1 3:3 4:1 5:1 6:1 8:1 9:1 10:1 11:1 12:1 17:1 21:1 22:1",
              "7 0:1 1:2 2:1 5:1 6:2 7:1 13:1 14:1 15:1 21:1",
              "2 0:1 1:1 2:1 3:1 4:1 5:1 17:2 18:1 22:2",
              "4 2:2 5:1 6:2 16:1 21:2 22:1",
              "1 0:3 1:2"],
    "test": ["10 3:1 17:1", "3 4:1 17:1 22:1"],
}


def write_tree(root, reviews=REVIEWS, feat=FEAT, vocab=VOCAB):
    acl = root / "aclImdb"
    for rel, text in reviews.items():
        (acl / rel).parent.mkdir(parents=True, exist_ok=True)
        (acl / rel).write_text(text, encoding="utf-8")
    for split, lines in (feat or {}).items():
        (acl / split / "labeledBow.feat").write_text("\n".join(lines) + "\n", encoding="ascii")
    (acl / "imdb.vocab").write_text("\n".join(vocab), encoding="utf-8")  # no final newline, as official
    return acl


def git_sha1(path) -> imdb.Checksum:
    data = path.read_bytes()
    return imdb.Checksum("git-sha1", hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())


def pin(monkeypatch, root, feat=FEAT):
    """Write the tiny tree under ``root/imdb`` and pin its files as if they were the official
    ones (vocabulary sha256, review-tree digest, .feat git blob ids)."""
    import dataclasses

    acl = write_tree(root / "imdb", feat=feat)
    vocab = imdb.Checksum("sha256", hashlib.sha256((acl / "imdb.vocab").read_bytes()).hexdigest())
    for name in ("VOCAB", "VOCAB_BESIDE"):
        monkeypatch.setattr(imdb, name, dataclasses.replace(getattr(imdb, name), checksum=vocab, size=None))
    digests = {rel: hashlib.sha256((acl / rel).read_bytes()).hexdigest() for rel in REVIEWS}
    monkeypatch.setattr(imdb, "REVIEWS_TREE_SHA256", imdb.tree_digest(
        {f"aclImdb/{rel}": h for rel, h in digests.items()}))
    monkeypatch.setattr(imdb, "FEAT_CHECKSUMS", {
        split: git_sha1(acl / split / "labeledBow.feat") if split in (feat or {}) else imdb.FEAT_CHECKSUMS[split]
        for split in ("train", "test")})
    return acl


def change_keeping_size_and_mtime(path, offset=0):
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x20]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("text, tokens", [
    ("Bromwell High's teachers' pomp", ["bromwell", "high", "teachers", "pomp"]),
    ("It's GREAT!!! Really?", ["it", "great", "!", "!", "!", "really", "?"]),
    ("one<br /><br />two<br/>three", ["one", "two", "three"]),
    ("the pit--or a low-budget B-movie", ["the", "pit", "or", "a", "low-budget", "b-movie"]),
    ("do: that :) ;-) =] (8 then 8)", ["do:", "that", ":)", ";-)", "=]", "(8", "then", "8)"]),
    ("the 1st E-6 in 1950's 3D", ["the", "1st", "e-6", "in", "1950", "3d"]),
    ("Clichéd naïve café", ["clichéd", "naïve", "café"]),
    ("rock'n'roll isn't 'quoted'", ["rock'n'roll", "isn't", "quoted"]),
])
def test_tokenize(text, tokens):
    assert imdb.tokenize(text) == tokens


def test_vocab_keeps_rank_order_and_rejects_duplicates(tmp_path):
    acl = write_tree(tmp_path)
    assert imdb.read_vocab(acl / "imdb.vocab") == VOCAB
    (tmp_path / "dup.vocab").write_text("the\nand\nthe\n", encoding="utf-8")
    with pytest.raises(FormatError, match="duplicate"):
        imdb.read_vocab(tmp_path / "dup.vocab")


def test_bag_of_words_equals_counting_tokens_review_by_review():
    texts = list(REVIEWS.values()) + ["", "\x01 sep inside the text \x01 the"]
    counts = imdb.bag_of_words(texts, VOCAB).toarray()
    index = {w: i for i, w in enumerate(VOCAB)}
    for row, text in zip(counts, texts):
        expect = np.zeros(len(VOCAB), dtype=np.int64)
        for t in imdb.tokenize(text):
            if t in index:
                expect[index[t]] += 1
        np.testing.assert_array_equal(row, expect)
    assert counts[-1, 0] == 2 and counts[-2].sum() == 0


def test_reviews_are_listed_in_feat_order(tmp_path):
    acl = write_tree(tmp_path)
    rev = imdb.list_reviews(acl / "train")
    assert [p.name for p in rev.paths] == ["0_9.txt", "1_7.txt", "0_2.txt", "3_4.txt", "10_1.txt"]
    assert rev.labels.tolist() == [1, 1, 0, 0, 0] and rev.ratings.tolist() == [9, 7, 2, 4, 1]
    assert rev.labels.dtype == np.int64


def test_review_file_names_and_ratings_are_checked(tmp_path):
    write_tree(tmp_path, reviews={**REVIEWS, "train/pos/5_3.txt": "bad"})
    with pytest.raises(FormatError, match="rating 3 does not fit folder pos/"):
        imdb.list_reviews(tmp_path / "aclImdb" / "train")
    (tmp_path / "aclImdb/train/pos/5_3.txt").rename(tmp_path / "aclImdb/train/pos/notes.txt")
    with pytest.raises(FormatError, match=r"notes\.txt: not an '<id>_<rating>.txt' review file; move it out"):
        imdb.list_reviews(tmp_path / "aclImdb" / "train")


def test_tokeniser_agrees_with_hand_written_feat(tmp_path):
    acl = write_tree(tmp_path)
    for split in ("train", "test"):
        built = imdb.build_split(acl / split, VOCAB, feat_checksum=git_sha1(acl / split / "labeledBow.feat"))
        assert built.source == "feat"
        a = built.agreement
        assert (a.rows_equal, a.rows) == (len(FEAT[split]), len(FEAT[split]))
        assert a.counts_equal == a.counts == built.counts.sum()


def test_agreement_counts_rows_that_differ(tmp_path):
    feat = {"train": FEAT["train"][:3] + ["4 2:2 5:1 6:3 16:1 21:2 22:1"] + FEAT["train"][4:]}
    acl = write_tree(tmp_path, feat=feat)
    built = imdb.build_split(acl / "train", VOCAB, feat_checksum=git_sha1(acl / "train" / "labeledBow.feat"))
    a = built.agreement
    assert (a.rows_equal, a.rows) == (4, 5)
    assert (a.counts_equal, a.counts) == (built.counts.sum() - 1, built.counts.sum())
    assert built.counts[3, 6] == 3  # the official file wins; the disagreement is only reported


def test_without_feat_the_text_is_tokenised(tmp_path):
    acl = write_tree(tmp_path, feat=None)
    built = imdb.build_split(acl / "train", VOCAB)
    assert built.source == "text" and built.agreement is None
    _, official = imdb.parse_feat_lines(FEAT["train"], len(VOCAB))
    assert (built.counts != official).nnz == 0


def test_feat_with_mismatched_counts_or_ratings_is_rejected(tmp_path):
    acl = write_tree(tmp_path, feat={"train": FEAT["train"][:4]})
    feat = acl / "train" / "labeledBow.feat"
    with pytest.raises(FormatError, match="4 lines but 5 review files"):
        imdb.build_split(acl / "train", VOCAB, feat_checksum=git_sha1(feat))
    acl = write_tree(tmp_path, feat={"train": [FEAT["train"][1], FEAT["train"][0]] + FEAT["train"][2:]})
    with pytest.raises(FormatError, match="line 1: rating 7 but review file 0_9.txt"):
        imdb.build_split(acl / "train", VOCAB, feat_checksum=git_sha1(feat))


def test_a_feat_that_is_not_the_official_one_is_refused_by_name(tmp_path):
    acl = write_tree(tmp_path)
    with pytest.raises(imdb.ChecksumError, match=r"train/labeledBow\.feat: git-sha1 is [0-9a-f]{40}, "
                                                 r"expected 973a6ddb.*not the official.*not used"):
        imdb.build_split(acl / "train", VOCAB)


def test_a_feat_that_fails_its_checksum_is_never_used_for_the_cache(tmp_path, monkeypatch):
    pin(monkeypatch, tmp_path)
    monkeypatch.setattr(imdb, "FEAT_CHECKSUMS", {**imdb.FEAT_CHECKSUMS, "test": imdb.Checksum("git-sha1", "0" * 40)})
    with pytest.raises(imdb.ChecksumError, match=r"test/labeledBow\.feat: git-sha1 is"):
        imdb.load_counts("train", tmp_path)
    assert not (tmp_path / "imdb" / "cache").exists()


def test_cache_from_pinned_feat_records_sources_and_agreement(tmp_path, monkeypatch):
    acl = pin(monkeypatch, tmp_path)
    counts, labels, _ = imdb.load_counts("train", tmp_path)
    _, official = imdb.parse_feat_lines(FEAT["train"], len(VOCAB))
    assert (counts != official).nnz == 0 and labels.tolist() == [1, 1, 0, 0, 0]
    for split in ("train", "test"):
        a = imdb.cached_agreement(split, tmp_path)
        assert (a.rows_equal, a.rows) == (len(FEAT[split]), len(FEAT[split])) and a.counts_equal == a.counts > 0
        with np.load(imdb._cache_path(tmp_path, split, "feat"), allow_pickle=False) as z:
            sources = json.loads(str(z["sources"]))
        assert sources == {"vocab": str(imdb.VOCAB.checksum), "reviews": f"sha256:{imdb.REVIEWS_TREE_SHA256}",
                           "feat": str(git_sha1(acl / split / "labeledBow.feat")),
                           "tokeniser_version": imdb.TOKENISER_VERSION, "columns": "full vocabulary, counts"}


def test_cache_from_the_texts_has_no_agreement_and_no_feat_source(tmp_path, monkeypatch):
    pin(monkeypatch, tmp_path, feat=None)
    assert imdb.cached_agreement("train", tmp_path) is None
    with np.load(imdb._cache_path(tmp_path, "train", "text"), allow_pickle=False) as z:
        assert str(z["source"]) == "text" and json.loads(str(z["sources"]))["feat"] == ""


def test_cache_built_from_other_sources_is_rebuilt(tmp_path, monkeypatch):
    pin(monkeypatch, tmp_path)
    first = imdb.load_counts("train", tmp_path)[0]
    path = imdb._cache_path(tmp_path, "train", "feat")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    stale = json.loads(str(arrays["sources"]))
    stale["tokeniser_version"] = 0
    _store.save_npz(path, **{**arrays, "sources": np.asarray(json.dumps(stale, sort_keys=True))})
    builds = []
    real_build = imdb._build_caches
    monkeypatch.setattr(imdb, "_build_caches", lambda root: builds.append(root) or real_build(root))
    assert (imdb.load_counts("train", tmp_path)[0] != first).nnz == 0
    assert builds == [tmp_path]
    imdb.load_counts("train", tmp_path)
    assert builds == [tmp_path]  # rebuilt once, then reused
    with np.load(path, allow_pickle=False) as z:
        assert json.loads(str(z["sources"]))["tokeniser_version"] == imdb.TOKENISER_VERSION


def test_a_changed_review_is_caught_on_load_even_with_its_mtime_restored(tmp_path, monkeypatch):
    acl = pin(monkeypatch, tmp_path, feat=None)
    imdb.load_counts("train", tmp_path)
    change_keeping_size_and_mtime(acl / "test" / "neg" / "0_3.txt")
    with pytest.raises(imdb.ChecksumError, match="differ from the official ones"):
        imdb.load_counts("train", tmp_path)


def test_a_changed_feat_is_caught_on_load(tmp_path, monkeypatch):
    acl = pin(monkeypatch, tmp_path)
    imdb.load_counts("train", tmp_path)
    change_keeping_size_and_mtime(acl / "train" / "labeledBow.feat", offset=3)
    with pytest.raises(imdb.ChecksumError, match=r"train/labeledBow\.feat: git-sha1 is"):
        imdb.load_counts("train", tmp_path)


def test_fetch_verifies_the_review_tree_and_the_feat_files(tmp_path, monkeypatch):
    acl = pin(monkeypatch, tmp_path)
    assert imdb.fetch(tmp_path) == [acl, acl / "train" / "labeledBow.feat", acl / "test" / "labeledBow.feat"]
    (acl / "train" / "pos" / "1_7.txt").write_text("A different review.", encoding="utf-8")
    with pytest.raises(imdb.ChecksumError, match="differ from the official ones"):
        imdb.fetch(tmp_path)


@pytest.mark.parametrize("line, message", [
    ("9 0:1 x:2", "not '<rating> <index>:<count> ...'"),
    ("9 0:1 3", "not '<rating> <index>:<count> ...'"),
    ("9 0:1 23:1", "index outside 0..22"),
    ("9 0:1 -1:1", "index outside 0..22"),
    ("9 0:0", "counts must be positive"),
    ("9 4:1 4:2", "repeated index"),
    ("", "empty line"),
])
def test_feat_parser_errors_name_the_line(line, message):
    with pytest.raises(FormatError, match=f"line 2: {message}"):
        imdb.parse_feat_lines([FEAT["train"][0], line], len(VOCAB))


def test_feat_parser_sorts_indices():
    ratings, counts = imdb.parse_feat_lines(["8 5:2 0:1", "3"], len(VOCAB))
    assert ratings.tolist() == [8, 3] and counts.has_sorted_indices
    assert counts.toarray()[0, [0, 5]].tolist() == [1, 2] and counts[1].nnz == 0


def test_restrict_keeps_the_most_frequent_words():
    counts = sp.csr_matrix(np.array([[2, 0, 5, 1], [0, 0, 0, 7], [1, 3, 0, 0]], dtype=np.int32))
    binary = imdb.restrict(counts, 3, binary=True)
    assert binary.dtype == np.float32 and binary.shape == (3, 3)
    np.testing.assert_array_equal(binary.toarray(), [[1, 0, 1], [0, 0, 0], [1, 1, 0]])
    np.testing.assert_array_equal(imdb.restrict(counts, 3, binary=False).toarray(),
                                  [[2, 0, 5], [0, 0, 0], [1, 3, 0]])


@pytest.mark.parametrize("num_words", [0, 89_528, 2.5, "10"])
def test_num_words_is_validated(num_words, tmp_path):
    with pytest.raises(ValueError, match="num_words must be an integer in"):
        imdb.load_imdb_bow(num_words, root=tmp_path)


def test_missing_data_names_the_files_and_the_fetch_command(tmp_path):
    with pytest.raises(MissingDataError, match=r"aclImdb_v1\.tar\.gz are missing; run `adamlab data fetch imdb`"):
        imdb.load_imdb_bow(root=tmp_path)


def test_a_vocabulary_that_is_not_the_official_one_is_refused(tmp_path):
    write_tree(tmp_path / "imdb", feat=None, vocab=VOCAB)
    (tmp_path / "imdb" / "aclImdb" / "imdb.vocab").unlink()
    with pytest.raises(MissingDataError, match=r"imdb\.vocab is missing"):
        imdb.load_imdb_bow(root=tmp_path)
    imdb.VOCAB.path(tmp_path).write_text("\n".join(VOCAB), encoding="utf-8")
    with pytest.raises(imdb.ChecksumError, match=r"imdb\.vocab has 93 bytes, expected 845980.*corrupt"):
        imdb.load_imdb_bow(root=tmp_path)
    assert not (tmp_path / "imdb" / "cache").exists()


def test_official_archive_is_accepted_like_extracted_files(tmp_path, monkeypatch):
    """Without an extracted tree, a verified aclImdb tarball is extracted safely, then read."""
    import dataclasses
    import hashlib
    import tarfile

    write_tree(tmp_path / "src")
    archive = tmp_path / "imdb" / "aclImdb_v1.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "src" / "aclImdb", arcname="aclImdb")
    vocab_bytes = (tmp_path / "src" / "aclImdb" / "imdb.vocab").read_bytes()
    sha = imdb.Checksum("sha256", hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(imdb, "ARCHIVE", dataclasses.replace(imdb.ARCHIVE, checksum=sha, size=None, urls=()))
    vocab_sha = imdb.Checksum("sha256", hashlib.sha256(vocab_bytes).hexdigest())
    monkeypatch.setattr(imdb, "VOCAB", dataclasses.replace(imdb.VOCAB, checksum=vocab_sha, size=None))
    acl = imdb.prepare(tmp_path)
    assert acl == tmp_path / "imdb" / "aclImdb"
    built = imdb.build_split(acl / "train", imdb.read_vocab(acl / "imdb.vocab"),
                             feat_checksum=git_sha1(acl / "train" / "labeledBow.feat"))
    assert built.agreement.rows_equal == built.agreement.rows == 5
    assert listing(tmp_path / "imdb") == ["aclImdb", "aclImdb_v1.tar.gz"]


def test_corrupt_archive_is_reported_and_not_extracted(tmp_path):
    imdb.ARCHIVE.path(tmp_path).parent.mkdir(parents=True)
    imdb.ARCHIVE.path(tmp_path).write_bytes(b"\x1f\x8b not really a tarball")
    with pytest.raises(imdb.ChecksumError, match=r"aclImdb_v1\.tar\.gz has 23 bytes, expected 84125825"):
        imdb.load_imdb_bow(root=tmp_path)
    assert listing(tmp_path / "imdb") == ["aclImdb_v1.tar.gz"]


# --- several processes, read-only folders, corrupt caches, leftovers ----------------------------


def official_counts(split):
    return imdb.parse_feat_lines(FEAT[split], len(VOCAB))[1].toarray()


def pinned_archive(monkeypatch, tmp_path):
    """A fresh data directory holding only a tiny aclImdb_v1.tar.gz, pinned (archive, vocabulary,
    review tree, .feat) as if it were the official one."""
    import dataclasses
    import tarfile

    src = pin(monkeypatch, tmp_path / "src")
    root = tmp_path / "data"
    archive = imdb.ARCHIVE.path(root)
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="aclImdb")
    sha = imdb.Checksum("sha256", hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(imdb, "ARCHIVE", dataclasses.replace(imdb.ARCHIVE, checksum=sha, size=None, urls=()))
    return root


def test_processes_loading_at_once_on_a_fresh_directory_extract_and_build_once(tmp_path, monkeypatch):
    """Three processes load at once from the archive alone: each gets complete data, the archive
    is extracted once and the bag-of-words built once (the others wait and reuse both)."""
    import tarfile

    root = pinned_archive(monkeypatch, tmp_path)
    log = tmp_path / "calls.log"
    log_calls(monkeypatch, tarfile.TarFile, "extractall", log, delay=0.5)  # a wide window for a race
    log_calls(monkeypatch, imdb, "build_split", log, delay=0.2)

    def load(i):
        data = imdb.load_imdb_bow(len(VOCAB), binary=False, root=root)
        return [data.x_train.toarray().tolist(), data.y_train.tolist(), data.x_test.toarray().tolist()]

    results = at_once(load, n=3)
    for x_train, y_train, x_test in results:
        np.testing.assert_array_equal(x_train, official_counts("train"))
        np.testing.assert_array_equal(x_test, official_counts("test"))
        assert y_train == [1, 1, 0, 0, 0]
    lines = log.read_text().split()[1::2]
    assert lines.count("extractall") == 1 and lines.count("build_split") == 2  # once, one per split
    assert listing(root / "imdb") == ["aclImdb", "aclImdb_v1.tar.gz", "cache"]  # no .extract-* left
    assert listing(root / "imdb" / "cache") == ["bow-test-feat-v1.npz", "bow-train-feat-v1.npz"]


def test_a_read_only_data_directory_caches_in_the_fallback_folder(tmp_path, monkeypatch, read_only):
    pin(monkeypatch, tmp_path / "data")
    root = read_only(tmp_path / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(_store, "_WARNED", set())
    fallback = _store.fallback_dir(root)
    assert fallback.parent == tmp_path / "xdg" / "adamlab" / "derived"
    with pytest.warns(DataWarning, match=f"cannot write the data directory {root} .*Read-only file system.*"
                                         f"caches go to {fallback}") as got:
        data = imdb.load_imdb_bow(len(VOCAB), binary=False, root=root)
    assert len([w for w in got if issubclass(w.category, DataWarning)]) == 1
    np.testing.assert_array_equal(data.x_train.toarray(), official_counts("train"))
    np.testing.assert_array_equal(data.x_test.toarray(), official_counts("test"))
    assert listing(root / "imdb") == ["aclImdb"]  # nothing was written into the data directory
    assert listing(fallback / "imdb" / "cache") == ["bow-test-feat-v1.npz", "bow-train-feat-v1.npz"]
    assert imdb._find_cache(root, "train") == fallback / "imdb" / "cache" / "bow-train-feat-v1.npz"

    def no_rebuild(root):
        raise AssertionError("the cache in the fallback folder was not used")

    monkeypatch.setattr(imdb, "_build_caches", no_rebuild)
    np.testing.assert_array_equal(imdb.load_counts("test", root)[0].toarray(), official_counts("test"))


def test_when_no_cache_can_be_written_the_data_still_come_with_one_warning(tmp_path, monkeypatch, read_only):
    pin(monkeypatch, tmp_path / "data")
    root = read_only(tmp_path / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(read_only(tmp_path / "xdg")))
    monkeypatch.setattr(_store, "_WARNED", set())
    with pytest.warns(DataWarning, match="not cached, so the next load computes them again") as got:
        data = imdb.load_imdb_bow(len(VOCAB), binary=False, root=root)
    assert len([w for w in got if issubclass(w.category, DataWarning)]) == 1
    np.testing.assert_array_equal(data.x_train.toarray(), official_counts("train"))
    assert not (tmp_path / "xdg").exists() and listing(root / "imdb") == ["aclImdb"]


def test_a_data_directory_this_user_may_not_write_is_served_by_the_kernel_rules_too(monkeypatch, tmp_path):
    """The same with a directory the operating system refuses to let us write (not simulated):
    owned by root and loaded as ``nobody`` when the tests run as root (root ignores permission
    bits), else made read-only with chmod. The loading runs in a forked process."""
    import multiprocessing
    import pwd
    import shutil
    import stat
    import tempfile

    as_root = os.geteuid() == 0
    if as_root:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("tests run as root and there is no user 'nobody' to load as")
    base = Path(tempfile.mkdtemp(prefix="adamlab-ro-"))  # not under tmp_path, which is 0700
    try:
        os.chmod(base, 0o755)
        root = base / "data"
        pin(monkeypatch, root)
        xdg, out = base / "xdg", base / "out"
        xdg.mkdir()
        out.mkdir()
        for d in (xdg, out):
            if as_root:
                os.chown(d, nobody.pw_uid, nobody.pw_gid)
        if not as_root:
            for d, _, _ in os.walk(root):
                os.chmod(d, 0o555)
        monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))

        def child():
            try:
                if as_root:
                    os.setgid(nobody.pw_gid)
                    os.setuid(nobody.pw_uid)
            except OSError as e:
                (out / "result").write_text(f"no setuid: {e}")
                return
            import warnings

            with warnings.catch_warnings(record=True) as got:
                warnings.simplefilter("always")
                data = imdb.load_imdb_bow(len(VOCAB), binary=False, root=root)
            ok = np.array_equal(data.x_train.toarray(), official_counts("train")) and \
                np.array_equal(data.x_test.toarray(), official_counts("test"))
            messages = [str(w.message) for w in got if issubclass(w.category, DataWarning)]
            (out / "result").write_text(json.dumps({"ok": bool(ok), "warnings": messages}))

        proc = multiprocessing.get_context("fork").Process(target=child)
        proc.start()
        proc.join(120)
        assert proc.exitcode == 0 and (out / "result").is_file(), "the loading process failed"
        text = (out / "result").read_text()
        if text.startswith("no setuid"):
            pytest.skip(f"cannot switch to user nobody here ({text})")
        result = json.loads(text)
        assert result["ok"] and len(result["warnings"]) == 1
        assert f"its derived caches go to {_store.fallback_dir(root)}" in result["warnings"][0]
        assert listing(root / "imdb") == ["aclImdb"]
        assert listing(_store.fallback_dir(root) / "imdb" / "cache") == ["bow-test-feat-v1.npz",
                                                                         "bow-train-feat-v1.npz"]
    finally:
        for d, _, _ in os.walk(base):
            os.chmod(d, stat.S_IRWXU)
        shutil.rmtree(base)


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_a_corrupt_cache_is_named_and_rebuilt(tmp_path, monkeypatch, damage):
    pin(monkeypatch, tmp_path)
    imdb.load_counts("train", tmp_path)
    path = imdb._cache_path(tmp_path, "train", "feat")
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:  # one byte of the stored data array (uncompressed npz: the CRC no longer matches)
        with np.load(path, allow_pickle=False) as z:
            data = z["data"]
        at = bytes(raw).index(data.tobytes())
        raw[at] ^= 0x01
    path.write_bytes(bytes(raw))
    builds = []
    real_build = imdb._build_caches
    monkeypatch.setattr(imdb, "_build_caches", lambda root: builds.append(root) or real_build(root))
    with pytest.warns(DataWarning, match=f"bag-of-words cache {path} is corrupt .*rebuilding it"):
        counts = imdb.load_counts("train", tmp_path)[0]
    np.testing.assert_array_equal(counts.toarray(), official_counts("train"))
    assert builds == [tmp_path]
    with np.load(path, allow_pickle=False) as z:  # the rebuilt cache is whole again
        np.testing.assert_array_equal(z["data"], counts.data)


def test_leftovers_of_killed_processes_are_removed_but_not_work_in_progress(tmp_path, monkeypatch):
    acl = pin(monkeypatch, tmp_path)
    imdb.load_counts("train", tmp_path)
    part = tmp_path / "imdb" / "cache" / ".bow-train-feat-v1.npz.k1ll3d.part"
    extract = tmp_path / "imdb" / ".extract-aclImdb-k1ll3d"

    def leave_leftovers():
        part.write_bytes(b"half a cache")
        (extract / "aclImdb").mkdir(parents=True, exist_ok=True)
        (extract / "aclImdb" / "imdb.vocab").write_text("half a tree")

    leave_leftovers()
    # While another process holds the locks (it is building the cache, extracting), its
    # temporaries are its work in progress: they stay.
    with _store.file_lock(tmp_path / "imdb" / "cache"), _store.file_lock(acl):
        imdb.load_counts("train", tmp_path)
        assert part.exists() and extract.exists()
    # With no process holding them, they are leftovers of a killed process: removed.
    imdb.load_counts("train", tmp_path)
    assert not part.exists() and not extract.exists()
    assert listing(tmp_path / "imdb") == ["aclImdb", "cache"]


def test_an_extraction_cleans_leftovers_of_a_killed_extraction(tmp_path, monkeypatch):
    root = pinned_archive(monkeypatch, tmp_path)
    stale = root / "imdb" / ".extract-1a2b3c4d"  # as named by an older version, too
    (stale / "aclImdb" / "train").mkdir(parents=True)
    imdb.prepare(root)
    assert listing(root / "imdb") == ["aclImdb", "aclImdb_v1.tar.gz"]


def test_hidden_files_in_the_review_tree_are_ignored(tmp_path, monkeypatch):
    """A .DS_Store (Finder) or ._name (AppleDouble) file is not a review: it neither breaks the
    listing nor changes the tree digest."""
    acl = pin(monkeypatch, tmp_path)
    (acl / "train" / "pos" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (acl / "test" / "neg" / "._0_3.txt").write_bytes(b"\x00\x05\x16\x07")
    assert [p.name for p in imdb.list_reviews(acl / "train").paths][:2] == ["0_9.txt", "1_7.txt"]
    np.testing.assert_array_equal(imdb.load_counts("test", tmp_path)[0].toarray(), official_counts("test"))
    assert len(imdb.verify_reviews(tmp_path)["train"].paths) == 5


# --- real data ----------------------------------------------------------------------------------

# Official labeledBow.feat lines (aclImdb v1), transcribed from the truncated copies of the
# official files described in shared/data/MANIFEST.md; row i is review <i>_<rating>.txt of pos/.
OFFICIAL_FEAT_LINES = {
    ("train", 0): (
        "9 0:9 1:1 2:4 3:4 4:6 5:4 6:2 7:2 8:4 10:4 12:2 26:1 27:1 28:1 29:2 32:1 41:1 45:1 47:1 "
        "50:1 54:2 57:1 59:1 63:2 64:1 66:1 68:2 70:1 72:1 78:1 100:1 106:1 116:1 122:1 125:1 "
        "136:1 140:1 142:1 150:1 167:1 183:1 201:1 207:1 208:1 213:1 217:1 230:1 255:1 321:5 "
        "343:1 357:1 370:1 390:2 468:1 514:1 571:1 619:1 671:1 766:1 877:1 1057:1 1179:1 1192:1 "
        "1402:2 1416:1 1477:2 1940:1 1941:1 2096:1 2243:1 2285:1 2379:1 2934:1 2938:1 3520:1 "
        "3647:1 4938:1 5138:4 5715:1 5726:1 5731:1 5812:1 8319:1 8567:1 10480:1 14239:1 20604:1 "
        "22409:4 24551:1 47304:1"
    ),
    ("train", 1): (
        "7 0:7 1:4 2:2 3:2 5:4 6:1 8:2 9:2 14:1 16:1 18:1 20:1 22:1 24:1 27:1 29:1 34:1 36:3 37:2 "
        "41:1 42:1 48:3 52:2 79:2 91:1 100:1 106:1 119:1 154:1 166:1 172:1 207:1 288:1 321:1 "
        "336:1 353:1 365:1 383:1 386:2 390:1 429:1 504:1 517:1 706:1 729:1 748:1 911:1 1107:1 "
        "1195:1 1332:1 1433:1 1620:1 1662:1 2047:1 2365:1 2390:1 2673:1 3111:1 3230:1 3513:1 "
        "4065:1 4357:1 5138:1 5365:1 5884:1 6617:1 11023:1 11392:1 11798:1 12318:1 12831:1 "
        "13645:1 18316:1 22409:1 22496:1 27245:1 28840:1 30533:2 32289:1 33606:1 44792:1 48240:1 "
        "48538:1 53958:1 54537:1 54675:1 62726:1 71743:1 87805:1"
    ),
    ("train", 2): (
        "9 0:4 1:4 2:4 3:7 4:2 5:1 6:1 7:1 9:1 10:1 13:1 14:1 19:1 20:2 22:1 25:1 27:1 29:1 34:1 "
        "39:1 42:1 44:1 49:1 76:1 91:1 97:1 101:1 118:1 123:1 148:1 156:1 171:3 176:1 237:1 242:1 "
        "253:1 276:1 288:1 321:2 342:1 345:1 370:1 390:1 509:1 680:1 682:1 840:2 860:1 872:2 "
        "916:1 972:1 1009:1 1010:1 1180:1 1195:1 1205:1 1477:1 1531:1 1790:1 1873:1 1990:1 2053:1 "
        "2067:1 2081:1 2099:1 2453:1 2511:1 2714:1 2924:1 3108:1 3514:1 3533:1 3781:1 4030:1 "
        "4263:1 5068:1 5138:1 5254:1 5268:2 6097:1 6611:1 8373:1 8950:1 15061:1 15594:1 20571:1 "
        "22409:2 23279:1 30533:1 48240:1 48538:1"
    ),
    ("train", 3): (
        "10 0:10 1:2 2:2 4:3 5:2 6:4 7:2 9:1 10:4 11:1 16:1 17:1 19:3 20:3 24:2 26:1 27:1 28:1 "
        "29:2 32:1 36:1 39:2 46:2 49:1 53:1 55:1 61:4 69:1 70:1 73:1 75:1 89:1 120:1 125:2 133:1 "
        "137:1 138:1 139:1 151:1 174:1 292:3 295:1 371:1 394:1 499:2 560:1 563:1 592:1 673:1 "
        "693:1 709:2 862:1 1306:1 1341:1 1642:2 1755:1 2149:1 2210:1 2778:1 2860:1 4648:1 5480:1 "
        "7117:1 7384:1 7826:1 9364:1"
    ),
    ("train", 6): (
        "10 0:6 1:4 2:1 3:1 5:3 6:1 7:2 9:1 10:1 13:1 15:1 16:1 17:2 18:3 22:1 25:2 29:1 30:2 "
        "32:2 48:1 49:1 58:1 60:1 61:2 75:3 76:1 79:1 109:1 113:1 114:4 115:1 116:1 122:1 157:2 "
        "214:1 221:1 438:1 442:1 449:1 488:1 517:1 543:1 571:1 605:1 658:1 746:1 771:1 840:1 "
        "842:1 849:1 852:1 898:1 905:1 953:1 1213:1 1379:1 1484:1 2636:1 2744:1 3864:1 4174:1 "
        "4450:1 9145:1 10760:1 16941:1 18942:1 68897:1"
    ),
    ("train", 10): (
        "9 1:1 2:6 3:2 4:1 5:4 8:1 9:2 12:1 13:1 16:2 19:1 20:1 23:1 24:1 26:1 35:1 42:1 51:1 "
        "55:1 61:2 62:1 66:1 71:2 75:1 99:1 109:1 114:2 120:1 134:1 142:1 145:2 222:2 272:1 282:1 "
        "308:1 336:1 341:1 342:1 389:1 461:1 592:1 621:1 870:1 890:1 905:1 910:1 927:1 944:1 "
        "1298:1 1329:1 1993:1 2200:1 2693:1 3864:1 4977:1"
    ),
    ("train", 11): (
        "9 0:1 1:3 2:1 3:1 11:2 15:1 20:1 36:1 48:1 52:4 61:1 63:1 65:1 67:1 72:1 95:1 101:1 "
        "109:1 214:1 372:1 381:1 402:1 406:1 550:1 712:1 922:1 1049:1 1363:1 2352:1 2813:1 3700:1 "
        "4388:1 10392:1 12289:1"
    ),
    ("train", 12): (
        "9 0:1 1:3 2:1 3:1 11:2 15:1 20:1 36:1 48:1 52:4 61:1 63:1 65:1 67:1 72:1 95:1 101:1 "
        "109:1 214:1 372:1 381:1 402:1 406:1 550:1 712:1 922:1 1049:1 1363:1 2352:1 2813:1 3700:1 "
        "10392:1 12289:1"
    ),
    ("train", 18): (
        "7 1:3 2:6 4:8 5:4 6:1 7:5 10:1 14:1 17:3 21:2 26:1 28:1 29:1 32:1 33:1 38:3 39:2 41:1 "
        "48:3 51:2 57:2 59:1 60:1 62:1 63:1 75:1 78:1 82:1 85:1 86:1 98:1 104:1 105:2 110:1 113:1 "
        "116:2 128:1 129:1 153:1 162:1 200:1 245:1 258:1 282:1 318:3 326:1 337:1 395:1 408:1 "
        "489:1 512:1 550:1 556:1 679:1 792:1 851:1 878:1 895:1 896:1 932:1 968:1 1025:1 1237:1 "
        "1620:1 1988:1 2191:1 2194:1 2211:1 2813:5 2984:1 3243:1 3989:1 4517:1 5240:1 5484:1 "
        "8341:1 10392:3 14851:1 15985:1"
    ),
    ("test", 8): (
        "9 0:17 1:6 2:5 3:8 4:2 6:2 7:7 8:2 9:1 10:4 11:2 12:1 13:2 14:1 15:2 18:2 19:2 22:1 24:3 "
        "25:2 31:2 33:1 34:1 36:3 37:1 39:1 40:1 44:1 47:1 49:2 50:1 54:2 55:1 58:3 60:1 63:2 "
        "67:2 68:1 69:1 73:1 75:1 78:2 87:1 88:1 97:2 100:1 103:1 110:1 117:1 135:2 137:1 139:1 "
        "142:1 150:1 165:1 182:1 183:1 230:1 231:1 266:1 294:1 330:1 353:1 390:1 421:1 448:1 "
        "483:2 516:1 536:1 543:1 569:1 586:1 618:1 619:1 665:1 794:1 838:1 873:1 960:2 971:1 "
        "1076:1 1111:1 1366:1 1451:1 1519:1 1570:1 1609:1 1621:2 1732:2 1815:1 1828:1 2179:2 "
        "2198:2 2226:1 2253:1 2858:1 2912:1 3336:1 4297:2 4433:1 4880:1 5072:1 5201:2 5657:1 "
        "5861:1 6163:1 7654:1 8319:1 9287:1 10867:1 11026:1 11537:1 12882:3 14176:1 15612:1 "
        "18701:1 19405:2 19843:1 29581:1 30172:1"
    ),
    ("test", 10): (
        "7 0:14 1:3 2:2 3:3 6:5 7:1 8:8 10:3 11:4 15:3 17:1 20:2 24:1 27:6 35:1 41:1 42:1 48:2 "
        "52:3 58:3 63:1 64:1 65:1 66:1 67:2 68:2 71:3 79:1 83:2 85:1 91:1 98:1 101:3 111:2 112:1 "
        "126:1 131:1 137:1 145:1 184:1 190:1 194:1 198:2 231:1 235:1 255:1 261:2 269:4 303:2 "
        "306:1 366:1 397:1 398:1 416:1 428:1 432:1 451:1 453:1 491:1 518:1 526:1 536:1 564:1 "
        "588:1 657:1 810:1 856:1 962:1 1023:1 1128:1 1430:3 1465:1 1619:1 1642:1 1749:1 2077:1 "
        "2088:1 3985:1 9702:1 10735:1 12803:1 15612:2"
    ),
    ("test", 17): (
        "8 1:2 30:1 340:1 509:1 738:1 758:1 767:1 9456:1"
    ),
    ("train", 4): (
        "8 0:13 1:9 2:6 3:4 4:2 5:5 6:10 7:6 9:2 10:3 11:1 12:1 13:1 14:3 16:1 17:1 18:2 19:4 "
        "20:1 24:1 25:1 28:1 30:1 31:1 32:2 34:1 36:1 40:1 41:5 49:2 50:1 53:2 57:1 60:1 61:2 "
        "62:1 64:1 69:1 72:1 79:1 83:1 88:1 89:2 93:1 97:1 98:1 108:1 110:1 114:3 118:2 122:1 "
        "124:1 129:2 138:1 140:1 146:2 147:1 152:1 157:1 158:1 172:1 174:1 178:1 193:3 215:1 "
        "218:1 228:1 235:1 253:1 286:1 301:1 356:1 365:1 381:2 383:1 385:1 404:1 472:1 473:1 "
        "509:1 521:1 528:1 550:1 610:1 632:1 684:1 703:1 736:1 758:1 765:1 772:2 817:1 826:1 "
        "862:1 889:1 927:1 980:2 1021:1 1033:1 1105:1 1146:1 1149:1 1155:1 1225:1 1315:1 1322:1 "
        "1564:1 1626:2 1642:2 1769:1 1777:1 1914:1 1943:1 2008:1 2162:2 2261:1 2371:1 2452:1 "
        "2515:1 2724:1 2888:1 3192:1 3341:1 3378:1 3583:1 3937:1 4081:1 4149:1 4226:1 4470:1 "
        "4836:1 5060:1 5205:1 6164:1 6726:1 7854:1 7991:1 8062:1 8240:1 8338:1 8734:1 9765:2 "
        "11530:1 14205:1 15644:1 15666:1 17192:1 19811:1 20442:1 32930:1 54535:1 66517:1 87947:1"
    ),
    ("train", 15): (
        "7 0:11 1:4 2:6 3:4 4:7 6:4 7:11 8:3 9:1 10:3 15:1 17:2 18:1 21:3 22:3 23:2 24:1 25:2 "
        "26:1 27:1 31:1 33:1 34:1 35:2 37:1 38:1 39:3 40:1 42:2 43:1 45:1 47:2 48:1 53:1 55:1 "
        "56:1 57:1 58:2 61:1 63:2 65:3 66:1 72:1 75:1 78:3 82:2 85:1 87:1 88:2 96:3 98:1 101:2 "
        "106:1 110:1 116:2 130:1 132:1 134:1 137:1 144:1 160:1 180:1 185:4 189:3 190:2 191:1 "
        "219:1 221:1 222:1 238:2 245:2 251:1 254:1 268:1 277:1 282:1 296:1 317:2 318:2 326:1 "
        "347:1 372:2 383:1 432:1 466:1 479:1 501:1 544:2 588:1 626:1 792:1 807:1 810:1 814:1 "
        "842:1 940:1 1083:1 1127:2 1188:2 1307:1 1347:1 1403:1 1419:1 1426:1 1452:1 1495:1 1571:1 "
        "1707:1 1721:1 1796:1 1896:1 2155:1 2183:1 2813:3 3129:1 3194:1 3214:1 3704:1 3864:1 "
        "4024:1 4174:1 4311:1 4383:1 4556:1 4620:1 5190:1 6074:1 6135:1 6749:1 6978:1 7391:1 "
        "9323:1 10392:3 13934:1 14044:1 15213:1 18942:1 22606:1 24057:1 24385:1 54712:1"
    ),
    ("test", 6): (
        "7 0:10 1:6 2:4 3:4 4:4 5:1 6:1 8:3 9:4 10:1 11:1 12:2 13:2 15:5 16:1 18:1 19:1 20:1 22:1 "
        "28:2 31:1 32:1 35:1 36:1 37:1 44:1 48:1 49:1 62:2 64:1 66:1 67:1 74:1 81:1 87:1 103:1 "
        "112:1 128:1 135:1 142:1 143:1 146:1 159:1 166:1 170:1 178:1 181:1 189:1 192:1 203:1 "
        "219:1 226:1 232:1 273:1 280:1 281:1 292:1 299:1 304:1 352:1 367:2 387:1 397:1 459:1 "
        "470:1 479:1 488:1 510:1 568:1 747:1 925:1 976:1 1115:1 1228:1 1299:1 1761:1 1815:1 "
        "2028:1 2188:1 2294:1 2316:1 2344:1 2742:1 3025:1 3227:1 4798:1 6014:1 7400:1 10781:1 "
        "10856:1 17679:1 18457:1"
    ),
    ("test", 19): (
        "10 0:7 1:3 2:2 3:6 5:3 6:2 7:2 8:1 9:1 10:1 11:1 12:2 16:1 22:1 26:1 28:1 35:1 36:1 37:1 "
        "40:1 45:1 48:1 52:1 54:2 60:1 65:1 67:1 68:1 71:1 83:3 86:1 91:1 96:1 98:1 99:1 106:1 "
        "116:1 132:3 151:1 152:1 174:1 221:1 222:1 237:1 287:1 288:1 294:1 302:1 323:1 340:1 "
        "411:1 418:1 493:1 509:1 716:1 743:2 758:1 761:1 767:1 916:1 1266:1 1312:1 1464:1 1564:1 "
        "1642:1 1911:1 1923:1 2350:1 2913:1 3353:1 3562:1 3836:1 3869:1 5326:1 7160:1 12410:1 "
        "12742:1 12775:1 14045:1 27135:1"
    ),
}

RATINGS = {1: 10122, 2: 4586, 3: 4961, 4: 5331, 7: 4803, 8: 5859, 9: 4607, 10: 9731}


@pytest.fixture(scope="module")
def real_root(data_root):
    if not (imdb._have_extracted(data_root) or imdb.ARCHIVE.path(data_root).is_file()):
        missing("imdb", f"IMDB reviews not in {data_root}/imdb")
    return data_root


@pytest.fixture(scope="module")
def real(real_root):
    return imdb.load_imdb_bow(root=real_root)


def test_real_sizes_and_labels(real):
    for x, y in ((real.x_train, real.y_train), (real.x_test, real.y_test)):
        assert isinstance(x, sp.csr_matrix) and x.shape == (25_000, 10_000) and x.dtype == np.float32
        assert y.dtype == np.int64 and np.bincount(y).tolist() == [12_500, 12_500]
        assert y[:12_500].min() == 1 and y[12_500:].max() == 0  # pos rows first, as in .feat
        assert np.all(x.data == 1.0) and x.has_sorted_indices
        assert 0 < x.getnnz(axis=1).min() and x.getnnz(axis=1).mean() > 100


def test_real_ratings_and_counts(real_root, real):
    hist = {}
    for split in ("train", "test"):
        counts, labels, ratings = imdb.load_counts(split, real_root)
        assert counts.shape == (25_000, imdb.VOCAB_SIZE) and counts.dtype == np.int32
        for r, n in zip(*np.unique(ratings, return_counts=True)):
            hist[int(r)] = hist.get(int(r), 0) + int(n)
        top = imdb.restrict(counts, 10_000, binary=False)
        assert top.sum() > 0.9 * counts.sum()  # the 10,000 most frequent words cover most tokens
    assert hist == RATINGS
    x = imdb.load_imdb_bow(10_000, binary=False, root=real_root).x_train
    assert (x.astype(bool) != real.x_train.astype(bool)).nnz == 0 and x.max() > 1


def test_real_tokeniser_reproduces_the_official_feat_lines(real_root):
    rows = {split: imdb.load_counts(split, real_root)[0] for split in ("train", "test")}
    agree = 0
    for (split, i), line in OFFICIAL_FEAT_LINES.items():
        _, official = imdb.parse_feat_lines([line], imdb.VOCAB_SIZE)
        ours = rows[split][i]  # pos review with id i is row i
        agree += (official != ours).nnz == 0
    assert agree == len(OFFICIAL_FEAT_LINES) == 16


def test_real_vocabulary_with_reviews_that_are_not_official_is_refused(real_root, tmp_path):
    write_tree(tmp_path / "imdb", feat=None)
    imdb.VOCAB.path(tmp_path).write_bytes(imdb.VOCAB.path(real_root).read_bytes())
    with pytest.raises(imdb.ChecksumError, match="differ from the official ones"):
        imdb.load_imdb_bow(root=tmp_path)
    assert not (tmp_path / "imdb" / "cache").exists()


def test_real_cache_records_where_the_counts_came_from(real_root, real):
    """The agreement path itself is exercised on the pinned fixtures above (CI has no .feat)."""
    for split in ("train", "test"):
        source = "feat" if (real_root / "imdb" / "aclImdb" / split / "labeledBow.feat").is_file() else "text"
        with np.load(imdb._find_cache(real_root, split), allow_pickle=False) as z:
            assert str(z["source"]) == source
            sources = json.loads(str(z["sources"]))
        assert sources["reviews"] == f"sha256:{imdb.REVIEWS_TREE_SHA256}"
        assert sources["vocab"] == str(imdb.VOCAB.checksum)
        assert sources["feat"] == (str(imdb.FEAT_CHECKSUMS[split]) if source == "feat" else "")
        a = imdb.cached_agreement(split, real_root)
        assert a is None if source == "text" else (a.rows == 25_000 and a.counts > 0)


def test_real_cache_is_plain_npz_and_reused(real_root, monkeypatch):
    for split in ("train", "test"):
        path = imdb._find_cache(real_root, split)
        with np.load(path, allow_pickle=False) as z:
            assert {"indptr", "indices", "data", "shape", "labels", "ratings", "ids", "sources"} <= set(z.files)
            assert str(z["source"]) in ("text", "feat")

    def no_rebuild(root):
        raise AssertionError("the cached bag-of-words was rebuilt")

    monkeypatch.setattr(imdb, "_build_caches", no_rebuild)
    assert imdb.load_imdb_bow(500, root=real_root).x_test.shape == (25_000, 500)


def test_bag_of_words_does_not_depend_on_the_block_size():
    texts = list(REVIEWS.values()) * 3
    whole = imdb.bag_of_words(texts, VOCAB)
    for chunk in (1, 2, 5, 100):
        assert (imdb.bag_of_words(texts, VOCAB, chunk=chunk) != whole).nnz == 0
    assert imdb.bag_of_words([], VOCAB).shape == (0, len(VOCAB))
