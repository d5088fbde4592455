"""The shared fetch/verify/cache code: checksums, the verified-state cache, downloads against a
loopback HTTP server, safe extraction. No network."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from adamlab.data import _store
from adamlab.data._store import Checksum, ChecksumError, FetchError, FormatError, MissingDataError, \
    Resource

from conftest import listing

PAYLOAD = bytes(range(256)) * 4099  # ~1 MB, more than one read chunk


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def resource(urls=(), body=PAYLOAD, relpath="demo/payload.bin", algo="sha256", size=None) -> Resource:
    digest = {"sha256": sha256(body), "md5": hashlib.md5(body).hexdigest(),
              "git-sha1": hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()}[algo]
    return Resource(relpath, Checksum(algo, digest), "demo", urls=tuple(urls), size=size)


leftovers = listing  # what a step left in a folder, lock files aside


# --- data directory and checksums ---------------------------------------------------------------


def test_data_dir_is_env_or_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path / "d"))
    assert _store.data_dir() == tmp_path / "d"
    monkeypatch.delenv("ADAMLAB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _store.data_dir() == tmp_path / "cache" / "adamlab"


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("yes", True), ("true", True), ("on", True), ("TRUE", True), (" Yes ", True),
    ("0", False), ("", False), ("false", False), ("no", False), ("off", False), ("False", False), (" OFF", False),
])
def test_offline_flag(monkeypatch, value, expected):
    monkeypatch.setenv("ADAMLAB_OFFLINE", value)
    assert _store.offline() is expected


def test_offline_flag_unset_is_online(monkeypatch):
    monkeypatch.delenv("ADAMLAB_OFFLINE", raising=False)
    assert _store.offline() is False


@pytest.mark.parametrize("value", ["maybe", "2", "-1", "y", "nein"])
def test_an_offline_flag_that_is_neither_is_an_error(monkeypatch, value):
    monkeypatch.setenv("ADAMLAB_OFFLINE", value)
    with pytest.raises(_store.SettingError, match=f"ADAMLAB_OFFLINE={value!r} is not understood: set it to "
                                                  f"1, true, yes or on, or to 0, false, no, off or empty"):
        _store.offline()


def test_the_tests_find_data_where_the_loaders_do(monkeypatch, tmp_path):
    """After `adamlab data fetch` into the per-user cache (no ADAMLAB_DATA, no ../shared/data),
    the real-data tests use that folder instead of skipping."""
    import conftest

    monkeypatch.delenv("ADAMLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert conftest.find_data_root() is None
    (tmp_path / "xdg" / "adamlab" / "mnist").mkdir(parents=True)
    assert conftest.find_data_root() == tmp_path / "xdg" / "adamlab" == _store.data_dir()
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path / "elsewhere"))
    assert conftest.find_data_root() is None
    (tmp_path / "elsewhere").mkdir()
    assert conftest.find_data_root() == tmp_path / "elsewhere"


def test_fallback_folder_is_per_data_directory_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    a, b = _store.fallback_dir(tmp_path / "a"), _store.fallback_dir(tmp_path / "b")
    assert a.parent == b.parent == tmp_path / "xdg" / "adamlab" / "derived" and a != b
    assert _store.fallback_dir(tmp_path / "a" / ".." / "a") == a


def test_git_blob_checksum_matches_git_hash_object(tmp_path):
    p = tmp_path / "hello"
    p.write_bytes(b"hello\n")
    # `printf 'hello\n' | git hash-object --stdin`
    assert _store.file_digest(p, Checksum("git-sha1", "x")) == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_unknown_checksum_algorithm_is_rejected():
    with pytest.raises(ValueError, match="sha1"):
        Checksum("sha1", "00")


@pytest.mark.parametrize("algo", ["sha256", "md5", "git-sha1"])
def test_verify_accepts_the_pinned_file(tmp_path, algo):
    res = resource(algo=algo)
    res.path(tmp_path).parent.mkdir(parents=True)
    res.path(tmp_path).write_bytes(PAYLOAD)
    assert _store.verify(res, tmp_path) == res.path(tmp_path)
    assert _store.is_verified(res, tmp_path)


def test_verify_names_missing_file_and_fetch_command(tmp_path):
    res = resource()
    with pytest.raises(MissingDataError, match=r"demo/payload\.bin is missing; run `adamlab data fetch demo`"):
        _store.verify(res, tmp_path)


def test_verify_reports_corrupt_file_with_fetch_command(tmp_path):
    res = resource()
    path = res.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(ChecksumError, match=r"corrupt.*adamlab data fetch demo"):
        _store.verify(res, tmp_path)
    assert not _store.is_verified(res, tmp_path)


def test_verify_reports_truncated_file_by_size(tmp_path):
    res = resource(size=len(PAYLOAD))
    path = res.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD[:1000])
    with pytest.raises(ChecksumError, match=f"1000 bytes, expected {len(PAYLOAD)}"):
        _store.verify(res, tmp_path)


def test_verified_state_is_cached_until_the_file_changes(tmp_path, monkeypatch):
    res = resource()
    path = res.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    _store.verify(res, tmp_path)
    calls = []
    real = _store.file_digest
    monkeypatch.setattr(_store, "file_digest", lambda p, c: calls.append(p) or real(p, c))
    _store.verify(res, tmp_path)
    assert calls == []  # no re-hash: size and mtime unchanged
    # Same size, different content, new mtime: hashed again and rejected.
    path.write_bytes(b"\xff" + PAYLOAD[1:])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ChecksumError):
        _store.verify(res, tmp_path)
    assert calls == [path]


@pytest.mark.parametrize("copy", ["in place", "cp -p"])
def test_same_size_edit_with_restored_mtime_is_hashed_again(tmp_path, copy):
    """Restoring the mtime (os.utime, cp -p, rsync -t, tar) does not hide a change: the
    record also holds inode, device and ctime, which a user cannot set back."""
    res = resource()
    path = res.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    _store.verify(res, tmp_path)
    st = path.stat()
    bad = b"\xff" + PAYLOAD[1:]
    if copy == "in place":
        with open(path, "r+b") as f:
            f.write(bad[:1])
    else:
        (tmp_path / "bad.bin").write_bytes(bad)
        os.replace(tmp_path / "bad.bin", path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert not _store.is_verified(res, tmp_path)
    with pytest.raises(ChecksumError, match="sha256 is"):
        _store.verify(res, tmp_path)


def test_a_file_that_changes_while_hashed_is_not_remembered(tmp_path, monkeypatch):
    res = resource()
    path = res.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    real = _store.file_digest

    def digest_then_touch(p, c):
        got = real(p, c)  # the bytes hashed were right, then someone rewrites the file
        with open(p, "r+b") as f:
            f.write(b"\xff")
        return got

    monkeypatch.setattr(_store, "file_digest", digest_then_touch)
    with pytest.raises(ChecksumError, match="changed while it was being verified"):
        _store.verify(res, tmp_path)
    assert not _store.is_verified(res, tmp_path)
    monkeypatch.setattr(_store, "file_digest", real)
    with pytest.raises(ChecksumError, match="sha256 is"):
        _store.verify(res, tmp_path)


def test_new_files_get_the_umask_mode_without_touching_the_umask(tmp_path, monkeypatch):
    def no_umask(mask):
        raise AssertionError("os.umask called after import")

    monkeypatch.setattr(os, "umask", no_umask)
    _store.atomic_write_bytes(tmp_path / "f.bin", b"x")
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~_store._UMASK


# --- downloads from a loopback server -----------------------------------------------------------


def test_download_full(tmp_path, http_server, online):
    http_server.routes["/payload.bin"] = (PAYLOAD, "ok")
    res = resource([http_server.url("/payload.bin")], size=len(PAYLOAD))
    bar = io.StringIO()
    path = _store.download(res, tmp_path, stream=bar)
    assert path.read_bytes() == PAYLOAD
    assert _store.is_verified(res, tmp_path)
    assert leftovers(path.parent) == ["payload.bin"]
    assert "100.0%" in bar.getvalue() and "payload.bin" in bar.getvalue()


def test_download_checksum_mismatch_leaves_nothing(tmp_path, http_server, online):
    http_server.routes["/payload.bin"] = (PAYLOAD[::-1], "ok")
    res = resource([http_server.url("/payload.bin")])
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        _store.download(res, tmp_path, progress=False)
    assert leftovers(tmp_path) == []  # not even the folder it made


def test_download_dropped_connection_leaves_nothing(tmp_path, http_server, online):
    http_server.routes["/payload.bin"] = (PAYLOAD, "drop")
    res = resource([http_server.url("/payload.bin")])
    with pytest.raises(FetchError, match="IncompleteRead"):
        _store.download(res, tmp_path, progress=False)
    assert leftovers(tmp_path) == []  # not even the folder it made


def test_download_falls_back_to_mirrors(tmp_path, http_server, online):
    http_server.routes["/dead/payload.bin"] = (b"", "404")
    http_server.routes["/flaky/payload.bin"] = (PAYLOAD, "drop")
    http_server.routes["/good/payload.bin"] = (PAYLOAD, "ok")
    urls = [http_server.url(p) for p in ("/dead/payload.bin", "/flaky/payload.bin", "/good/payload.bin")]
    path = _store.download(resource(urls), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert http_server.requests == ["/dead/payload.bin", "/flaky/payload.bin", "/good/payload.bin"]
    assert leftovers(path.parent) == ["payload.bin"]


def test_offline_never_touches_the_network(tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("ADAMLAB_OFFLINE", "1")
    http_server.routes["/payload.bin"] = (PAYLOAD, "ok")
    res = resource([http_server.url("/payload.bin")])
    with pytest.raises(MissingDataError, match="ADAMLAB_OFFLINE"):
        _store.download(res, tmp_path)
    with pytest.raises(MissingDataError, match="adamlab data fetch demo"):
        _store.ensure(res, tmp_path)
    assert http_server.requests == []


def test_ensure_fetches_on_first_use_then_uses_the_file(tmp_path, http_server, online, capsys):
    http_server.routes["/payload.bin"] = (PAYLOAD, "ok")
    res = resource([http_server.url("/payload.bin")])
    assert _store.ensure(res, tmp_path).read_bytes() == PAYLOAD
    assert _store.ensure(res, tmp_path).read_bytes() == PAYLOAD
    assert http_server.requests == ["/payload.bin"]


# --- safe extraction ----------------------------------------------------------------------------


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_safe_extract_puts_the_folder_in_place(tmp_path):
    tar = make_tar(tmp_path / "a.tar.gz", {"top/x.txt": b"x", "top/sub/y.txt": b"y"})
    out = _store.safe_extract(tar, tmp_path / "dest", "top")
    assert (out / "sub" / "y.txt").read_bytes() == b"y"
    assert leftovers(tmp_path / "dest") == ["top"]


def test_safe_extract_refuses_paths_outside_and_leaves_nothing(tmp_path):
    tar = make_tar(tmp_path / "evil.tar.gz", {"top/ok.txt": b"ok", "../escaped.txt": b"bad"})
    with pytest.raises(FormatError, match=r"refusing unsafe member '\.\./escaped\.txt' in .*evil\.tar\.gz"
                                          r".*tampered with: delete it and run `adamlab data fetch demo`"):
        _store.safe_extract(tar, tmp_path / "dest", "top", "demo")
    assert not (tmp_path / "escaped.txt").exists()
    assert leftovers(tmp_path / "dest") == []


def test_unreadable_archive_says_so_with_the_fetch_command(tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(b"\x1f\x8b not a tarball")
    with pytest.raises(FormatError, match=r"(?s)not a readable tar archive .*adamlab data fetch demo"):
        _store.safe_extract(tmp_path / "a.tar.gz", tmp_path / "dest", "top", "demo")


def test_safe_extract_without_the_data_filter_names_the_python_requirement(tmp_path, monkeypatch):
    tar = make_tar(tmp_path / "a.tar.gz", {"top/x.txt": b"x"})
    monkeypatch.delattr(tarfile, "data_filter")  # as on Python 3.11.0-3.11.3
    with pytest.raises(_store.DataError, match=r"filter='data'.*Python >= 3\.11\.4"):
        _store.safe_extract(tar, tmp_path / "dest", "top")
    assert not (tmp_path / "dest").exists()


def test_safe_extract_requires_the_expected_top_folder(tmp_path):
    tar = make_tar(tmp_path / "a.tar.gz", {"other/x.txt": b"x"})
    with pytest.raises(FormatError, match="no top-level folder top/"):
        _store.safe_extract(tar, tmp_path / "dest", "top")
    assert leftovers(tmp_path / "dest") == []


def test_failed_download_keeps_folders_that_existed(tmp_path, http_server, online):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "other.bin").write_bytes(b"x")
    http_server.routes["/payload.bin"] = (PAYLOAD[::-1], "ok")
    with pytest.raises(ChecksumError):
        _store.download(resource([http_server.url("/payload.bin")]), tmp_path, progress=False)
    assert leftovers(tmp_path / "demo") == ["other.bin"]


# --- locks and leftovers ------------------------------------------------------------------------


def test_a_lock_is_exclusive_across_open_files_and_free_once_released(tmp_path):
    target = tmp_path / "thing"
    with _store.file_lock(target) as held:
        assert held and _store.lock_path(target).is_file()
        with _store.file_lock(target, blocking=False) as other:
            assert other is False  # what a second process would see
    with _store.file_lock(target, blocking=False) as again:
        assert again


def test_download_removes_temporaries_of_a_killed_download_but_not_of_a_live_one(tmp_path, http_server, online):
    http_server.routes["/payload.bin"] = (PAYLOAD, "ok")
    res = resource([http_server.url("/payload.bin")])
    dest = res.path(tmp_path)
    dest.parent.mkdir(parents=True)
    stale = dest.parent / ".payload.bin.k1ll3d.part"
    stale.write_bytes(PAYLOAD[:1000])
    assert _store.download(res, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == ["payload.bin"]
    # A second download waits for a writer that holds the lock; here it cannot wait, so sweep
    # (the read path's cleanup) must leave a live writer's temporary alone.
    stale.write_bytes(PAYLOAD[:1000])
    with _store.file_lock(dest):
        _store.sweep_stale(dest, parts=[dest])
        assert stale.exists()
    _store.sweep_stale(dest, parts=[dest])
    assert not stale.exists()


def test_processes_fetching_at_once_download_once(tmp_path, http_server, online):
    from conftest import at_once

    http_server.routes["/payload.bin"] = (PAYLOAD, "ok")
    res = resource([http_server.url("/payload.bin")], size=len(PAYLOAD))
    digests = at_once(lambda i: sha256(_store.ensure(res, tmp_path).read_bytes()), n=3)
    assert digests == [sha256(PAYLOAD)] * 3
    assert http_server.requests == ["/payload.bin"]
    assert leftovers(res.path(tmp_path).parent) == ["payload.bin"]


def test_safe_extract_by_a_second_process_waits_and_keeps_the_first_tree(tmp_path):
    tar = make_tar(tmp_path / "a.tar.gz", {"top/x.txt": b"x", "top/sub/y.txt": b"y"})
    out = _store.safe_extract(tar, tmp_path / "dest", "top")
    inode = out.stat().st_ino
    extracted = []
    again = _store.safe_extract(tar, tmp_path / "dest", "top",
                                done=lambda final: extracted.append(final) or (final / "sub" / "y.txt").is_file())
    assert again == out and extracted == [out] and out.stat().st_ino == inode  # not replaced


def test_safe_extract_replaces_an_incomplete_tree(tmp_path):
    tar = make_tar(tmp_path / "a.tar.gz", {"top/x.txt": b"x", "top/sub/y.txt": b"y"})
    (tmp_path / "dest" / "top").mkdir(parents=True)
    (tmp_path / "dest" / "top" / "x.txt").write_bytes(b"half")
    out = _store.safe_extract(tar, tmp_path / "dest", "top", done=lambda final: (final / "sub").is_dir())
    assert (out / "x.txt").read_bytes() == b"x" and (out / "sub" / "y.txt").read_bytes() == b"y"
    assert leftovers(tmp_path / "dest") == ["top"]


def test_extracting_into_a_read_only_directory_says_what_to_do(tmp_path, read_only):
    tar = make_tar(tmp_path / "a.tar.gz", {"top/x.txt": b"x"})
    (tmp_path / "dest").mkdir()
    read_only(tmp_path / "dest")
    with pytest.raises(_store.DataError, match=r"cannot extract .*a\.tar\.gz into .*dest \(Read-only file "
                                               r"system\).*extract it once on a writable copy, or set ADAMLAB_DATA"):
        _store.safe_extract(tar, tmp_path / "dest", "top")


def test_verification_of_a_read_only_directory_is_remembered_in_the_fallback_folder(tmp_path, monkeypatch,
                                                                                  read_only):
    res = resource()
    res.path(tmp_path / "data").parent.mkdir(parents=True)
    res.path(tmp_path / "data").write_bytes(PAYLOAD)
    root = read_only(tmp_path / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _store.verify(res, root)
    assert not (root / ".verified.json").exists() and (_store.fallback_dir(root) / ".verified.json").is_file()
    assert _store.is_verified(res, root)


def test_a_corrupt_cache_file_is_named(tmp_path):
    path = tmp_path / "c.npz"
    _store.save_npz(path, a=np.arange(1000))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.warns(_store.DataWarning, match=f"the demo cache {path} is corrupt .*rebuilding it"):
        assert _store.read_npz(path, "the demo cache") is None
    assert _store.read_npz(tmp_path / "absent.npz", "the demo cache") is None
