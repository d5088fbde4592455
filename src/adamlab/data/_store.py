"""The data directory: where files live, how they are fetched and verified.

Every dataset file the loaders read is described by a :class:`Resource`: its path inside the data
directory, a pinned checksum, and the URLs it can be downloaded from (official host first, then
mirrors). The rules the loaders follow:

- The data directory is ``$ADAMLAB_DATA`` if set, else a per-user cache directory
  (``$XDG_CACHE_HOME/adamlab`` or ``~/.cache/adamlab``).
- A file is used only after its checksum matched. The result is remembered in
  ``<data dir>/.verified.json`` keyed by the file's size, mtime, inode, device and ctime, so a
  second load does not re-hash 150 MB. A file whose stat changed is hashed again; ctime cannot be
  set back by a user, so a same-size edit with its mtime restored (``cp -p``, ``rsync -t``, a tar
  extraction, ``os.utime``) is caught. The stat is taken before hashing and checked again after,
  so a file that changes while it is hashed is not remembered as verified.
- A download goes to a temporary file beside its target and is renamed into place only after the
  checksum matched; on any failure the temporary file is deleted. A copy from a local folder
  (:func:`copy_in`, ``adamlab data fetch --from DIR``) goes the same way.
- With ``ADAMLAB_OFFLINE=1`` (or ``true``, ``yes``, ``on``) nothing touches the network: a missing
  file raises :class:`MissingDataError` naming the file and the ``adamlab data fetch`` command.
  ``0``, ``false``, ``no``, ``off`` or empty mean online; any other value is an error, raised
  by every verification too, so that it is an error even when no file is missing.
- Any number of processes may prepare the same data at once. Each step that writes (a download, an
  extraction, a derived cache, the verified-state record) holds an exclusive ``flock`` on a lock
  file ``.<name>.lock`` beside its target, checks again under the lock whether another process did
  the work meanwhile, and puts its result in place by one atomic rename; readers need no lock.
  Under the lock, temporaries of the same target left by a killed process (``.<name>.*.part``,
  ``.extract-*``) are removed: a process that is still writing would hold the lock.
- A data directory that cannot be written (a read-only mount or shared copy) still serves its
  data. Derived caches and verification records then go to :func:`fallback_dir`
  (``<per-user cache>/derived/<digest of the directory's path>``), with one warning naming it; if
  that cannot be written either, the result is computed, returned, not cached, and one warning
  says so.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the atomic renames still keep every file whole
    fcntl = None

ENV_DATA = "ADAMLAB_DATA"
ENV_OFFLINE = "ADAMLAB_OFFLINE"
_VERIFIED_FILE = ".verified.json"
_CHUNK = 1 << 20
# The process umask, read once at import: os.umask can only be read by setting it, and setting it
# later would race with other threads creating files.
_UMASK = os.umask(0)
os.umask(_UMASK)


class DataError(Exception):
    """Base class of every data-directory error."""


class MissingDataError(DataError, FileNotFoundError):
    """A dataset file is not in the data directory (and could not or may not be fetched)."""


class ChecksumError(DataError):
    """A file's checksum differs from the pinned one: it is corrupt, truncated or not official."""


class FormatError(DataError, ValueError):
    """A file does not follow its official format (wrong magic number, truncated, bad count)."""


class FetchError(DataError):
    """A download failed from every URL."""


class SettingError(DataError, ValueError):
    """An environment variable holds a value that is not understood."""


class DataWarning(UserWarning):
    """Something about the data directory the user should know, though the data were returned:
    a cache that could not be written, or a corrupt cache that was rebuilt."""


def user_cache_dir() -> Path:
    """The per-user cache directory: ``$XDG_CACHE_HOME/adamlab`` or ``~/.cache/adamlab``."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "adamlab" / "data"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "adamlab"


def data_dir() -> Path:
    """The data directory: ``$ADAMLAB_DATA`` if set, else :func:`user_cache_dir`."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return user_cache_dir()


def fallback_dir(root: Path) -> Path:
    """Where derived caches and verification records of the data directory ``root`` go when
    ``root`` cannot be written: ``<per-user cache>/derived/<16 hex digits of the SHA-256 of
    root's real path>``, one folder per data directory."""
    key = hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:16]
    return user_cache_dir() / "derived" / key


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def env_flag(name: str) -> bool:
    """A yes/no environment variable: 1/true/yes/on, or 0/false/no/off/empty (any case);
    unset is false. Anything else raises SettingError naming the variable and the values."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError(f"{name}={raw!r} is not understood: set it to 1, true, yes or on, or to "
                       f"0, false, no, off or empty")


def offline() -> bool:
    """True when ``ADAMLAB_OFFLINE`` is true (see :func:`env_flag`): never use the network."""
    return env_flag(ENV_OFFLINE)


def fetch_command(dataset: str) -> str:
    return f"adamlab data fetch {dataset}"


@dataclass(frozen=True)
class Checksum:
    """A pinned digest. ``algo`` is ``sha256``, ``md5`` or ``git-sha1`` (a git blob id:
    SHA-1 of ``b"blob <size>\\0"`` followed by the content)."""

    algo: str
    hexdigest: str

    def __post_init__(self):
        if self.algo not in ("sha256", "md5", "git-sha1"):
            raise ValueError(f"checksum algo must be sha256, md5 or git-sha1, got {self.algo!r}")

    def hasher(self, size: int | None = None):
        if self.algo == "git-sha1":
            if size is None:
                raise ValueError("a git-sha1 checksum needs the file size up front")
            h = hashlib.sha1()
            h.update(b"blob %d\0" % size)
            return h
        return hashlib.new(self.algo)

    def __str__(self) -> str:
        return f"{self.algo}:{self.hexdigest}"


@dataclass(frozen=True)
class Resource:
    """One file of a dataset: path relative to the data directory, pinned checksum, URLs."""

    relpath: str
    checksum: Checksum
    dataset: str
    urls: tuple[str, ...] = ()
    size: int | None = None
    note: str = field(default="", compare=False)

    def path(self, root: Path | None = None) -> Path:
        return (data_dir() if root is None else Path(root)) / self.relpath


def file_digest(path: Path, checksum: Checksum) -> str:
    """Stream ``path`` through the hash named by ``checksum``."""
    path = Path(path)
    h = checksum.hasher(path.stat().st_size)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Verified-state cache: {key: {"stat": [size, mtime_ns, ino, dev, ctime_ns], "checksum"}}.


def stat_key(st: os.stat_result) -> list[int]:
    """What must stay equal for a recorded check to hold: size, mtime, inode, device and ctime
    (ctime changes on every write, rename or utime and cannot be set back by a user)."""
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns]


def _verified_files(root: Path) -> tuple[Path, Path]:
    """The record in the data directory, and the one in its fallback folder (used when the data
    directory cannot be written)."""
    return Path(root) / _VERIFIED_FILE, fallback_dir(root) / _VERIFIED_FILE


def _read_state(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _update_state(path: Path, change) -> None:
    """Read, change and atomically rewrite one record file under its lock (raises OSError)."""
    with file_lock(path):
        clean_stale_parts(path)
        state = _read_state(path)
        if change(state) is False:
            return
        atomic_write_bytes(path, json.dumps(state, indent=1, sort_keys=True).encode())


def remember(root: Path, key: str, stat: list[int], checksum: str) -> None:
    """Record that the file (or tree, see imdb) ``key`` with stat ``stat`` matched ``checksum``:
    in the data directory, else in its fallback folder, else nowhere (the next load re-hashes)."""
    for path in _verified_files(root):
        try:
            _update_state(path, lambda state: state.__setitem__(key, {"stat": stat, "checksum": checksum}))
            return
        except OSError:
            continue


def recorded(root: Path, key: str, stat: list[int], checksum: str) -> bool:
    """True if a successful check of ``key`` with exactly this stat and checksum is recorded."""
    want = {"stat": stat, "checksum": checksum}
    return any(_read_state(path).get(key) == want for path in _verified_files(root) if path.is_file())


def _forget(root: Path, relpath: str) -> None:
    for path in _verified_files(root):
        if relpath in _read_state(path):
            try:
                _update_state(path, lambda state: state.pop(relpath, None) is not None)
            except OSError:
                pass


def is_verified(res: Resource, root: Path | None = None) -> bool:
    """True if the file exists and its stat (size, mtime, inode, device, ctime) still matches a
    recorded successful check against the pinned checksum."""
    root = data_dir() if root is None else Path(root)
    try:
        st = res.path(root).stat()
    except OSError:
        return False
    return recorded(root, res.relpath, stat_key(st), str(res.checksum))


def verify(res: Resource, root: Path | None = None) -> Path:
    """Return the path of ``res`` after checking its checksum (cached by stat, see above).

    Raises MissingDataError if the file is absent and ChecksumError if its digest differs or the
    file changed while it was being hashed.
    """
    offline()  # an ADAMLAB_OFFLINE that is not understood is refused before any file is used
    root = data_dir() if root is None else Path(root)
    path = res.path(root)
    if not path.is_file():
        raise MissingDataError(
            f"{path} is missing; run `{fetch_command(res.dataset)}` "
            f"(or set {ENV_DATA} to a directory that holds it)"
        )
    if is_verified(res, root):
        return path
    before = stat_key(path.stat())
    if res.size is not None and before[0] != res.size:
        _forget(root, res.relpath)
        raise ChecksumError(
            f"{path} has {before[0]} bytes, expected {res.size}: the file is truncated "
            f"or corrupt; delete it and run `{fetch_command(res.dataset)}`"
        )
    got = file_digest(path, res.checksum)
    if got != res.checksum.hexdigest:
        _forget(root, res.relpath)
        raise ChecksumError(
            f"{path}: {res.checksum.algo} is {got}, expected {res.checksum.hexdigest}: the file "
            f"is corrupt or truncated; delete it and run `{fetch_command(res.dataset)}`"
        )
    if stat_key(path.stat()) != before:
        _forget(root, res.relpath)
        raise ChecksumError(f"{path} changed while it was being verified; load it again once "
                            f"nothing writes to it")
    remember(root, res.relpath, before, str(res.checksum))
    return path


# ---------------------------------------------------------------------------------------------
# Writing and downloading.


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def save_npz(path: Path, **arrays) -> None:
    """``np.savez`` (uncompressed, plain arrays only) to a temporary file, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        _umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# Locks, leftovers of killed processes, derived caches.


def lock_path(target: Path) -> Path:
    """The lock file of ``target``: ``.<name>.lock`` beside it."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def file_lock(target: Path, *, blocking: bool = True):
    """Hold an exclusive ``flock`` on :func:`lock_path` of ``target`` (creating its folder).

    Yields True while the lock is held. Yields False, holding nothing, when the lock file cannot
    be created (a read-only folder, where nothing can be written anyway) or, with
    ``blocking=False``, when another process holds the lock. The lock goes with the process: a
    killed process holds nothing. Lock files are left in place (removing one would let two
    processes hold "the" lock at once).
    """
    path = lock_path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        fd = None
    if fd is None:
        yield False
        return
    try:
        held = True
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                held = False
        yield held
    finally:
        os.close(fd)  # releases the lock


def _part_pattern(target: Path) -> str:
    """The names :func:`atomic_write_bytes`, :func:`save_npz` and :func:`download` give the
    temporary files of ``target``."""
    target = Path(target)
    return os.path.join(glob.escape(os.fspath(target.parent)), f".{glob.escape(target.name)}.*.part")


def clean_stale_parts(target: Path) -> list[Path]:
    """Remove the temporary files of ``target`` (``.<name>.*.part``). Call only while holding
    ``target``'s lock (or the lock of the step that writes it): a writer that is still alive holds
    that lock, so what is found then was left by a killed process."""
    removed = []
    for name in glob.glob(_part_pattern(target)):
        try:
            os.unlink(name)
            removed.append(Path(name))
        except OSError:
            pass
    return removed


def clean_stale_dirs(folder: Path, prefix: str = ".extract-") -> list[Path]:
    """Remove the temporary folders ``<folder>/<prefix>*`` (extractions). As for
    :func:`clean_stale_parts`, only while holding the lock of the extraction into ``folder``."""
    removed = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return removed
    for name in names:
        shutil.rmtree(Path(folder) / name, ignore_errors=True)
        removed.append(Path(folder) / name)
    return removed


def sweep_stale(lock_target: Path, parts=(), folder: Path | None = None) -> None:
    """Remove leftovers of killed processes seen on a read path, without waiting: only if some
    exist, and only if ``lock_target``'s lock is free (no process is writing). ``parts``: targets
    whose ``.part`` files to remove; ``folder``: where to remove ``.extract-*`` folders."""
    found = any(glob.glob(_part_pattern(t)) for t in parts)
    if folder is not None:
        try:
            found = found or any(n.startswith(".extract-") for n in os.listdir(folder))
        except OSError:
            pass
    if not found:
        return
    with file_lock(lock_target, blocking=False) as held:
        if held:
            for t in parts:
                clean_stale_parts(t)
            if folder is not None:
                clean_stale_dirs(folder)


@contextlib.contextmanager
def cache_lock(root: Path, relpath: str):
    """Serialise building the derived cache(s) ``root/relpath``: the lock beside it, or, when the
    data directory cannot be written, beside its place in :func:`fallback_dir`."""
    with file_lock(Path(root) / relpath) as held:
        if held:
            yield
            return
    with file_lock(fallback_dir(root) / relpath):
        yield


def cache_candidates(root: Path, relpath: str) -> list[Path]:
    """Where a derived cache may be: in the data directory, then in its fallback folder."""
    return [Path(root) / relpath, fallback_dir(root) / relpath]


_WARNED: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """One :class:`DataWarning` per ``key`` and process."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, DataWarning, stacklevel=3)


def read_npz(path: Path, what: str) -> dict | None:
    """All arrays of the cache ``path`` (read with allow_pickle=False), or None if it is absent.

    A cache that cannot be read (truncated, altered: bad zip structure or CRC, bad array header)
    gives a :class:`DataWarning` naming it and None, so that the caller rebuilds it from the
    verified sources (the rebuilt file replaces it atomically).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except PermissionError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, KeyError, OSError) as e:
        warnings.warn(f"{what} {path} is corrupt ({type(e).__name__}: {e}); rebuilding it from the "
                      f"verified sources", DataWarning, stacklevel=2)
        return None


def save_cache(root: Path, relpath: str, arrays: dict) -> Path | None:
    """Write the derived cache ``root/relpath`` (:func:`save_npz`); return where it went.

    If the data directory cannot be written (read-only, no permission, full), the cache goes to
    :func:`fallback_dir` instead, with one warning naming that folder; if that fails too, nothing
    is written, one warning says so, and None is returned (the caller still has the data).
    Call under :func:`cache_lock`; stale temporaries of the target are removed first.
    """
    primary = Path(root) / relpath
    try:
        clean_stale_parts(primary)
        save_npz(primary, **arrays)
        return primary
    except OSError as e:
        first = e
    alt = fallback_dir(root) / relpath
    try:
        clean_stale_parts(alt)
        save_npz(alt, **arrays)
    except OSError as e:
        warn_once(f"nocache:{os.path.realpath(root)}",
                  f"cannot write the cache {primary} ({first.strerror or first}) nor {alt} "
                  f"({e.strerror or e}); the data are computed and returned but not cached, so the "
                  f"next load computes them again. Make {fallback_dir(root)} writable (it follows "
                  f"XDG_CACHE_HOME) or use a writable copy of the data directory")
        return None
    warn_once(f"fallback:{os.path.realpath(root)}",
              f"cannot write the data directory {root} ({first.strerror or first}); its derived "
              f"caches go to {fallback_dir(root)}")
    return alt


def _umask_mode(fd_or_path) -> None:
    """mkstemp creates files 0600; give the final file the usual mode (0666 minus the umask)."""
    os.chmod(fd_or_path, 0o666 & ~_UMASK)


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class ProgressBar:
    """A one-line text progress bar on a stream (stderr by default), redrawn at most 10x/s."""

    def __init__(self, label: str, total: int | None, stream=None, width: int = 30):
        self.label, self.total, self.width = label, total, width
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self._last = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._draw()

    def _draw(self, end: str = "") -> None:
        mb = self.done / 1e6
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * self.width)
            line = f"\r{self.label} [{bar:<{self.width}}] {100 * frac:5.1f}% {mb:.1f}/{self.total / 1e6:.1f} MB"
        else:
            line = f"\r{self.label} {mb:.1f} MB"
        self.stream.write(line + end)
        self.stream.flush()

    def close(self) -> None:
        self._draw(end="\n")


def download(res: Resource, root: Path | None = None, *, progress: bool = True,
             timeout: float = 60.0, stream=None) -> Path:
    """Download ``res`` into the data directory, trying its URLs in order (mirror fallback).

    Each attempt streams into a temporary file beside the target while hashing; the file is
    renamed into place only when the transfer is complete and the checksum matches. A failed
    attempt leaves nothing behind. Raises FetchError (or ChecksumError if every URL that answered
    served bytes with the wrong checksum).
    """
    if offline():
        raise MissingDataError(
            f"{res.path(root)} is missing and {ENV_OFFLINE} is set, so it is not downloaded; "
            f"run `{fetch_command(res.dataset)}` on a machine with internet"
        )
    if not res.urls:
        raise FetchError(f"{res.relpath} has no download URL; see the dataset's documentation")
    root = data_dir() if root is None else Path(root)
    dest = res.path(root)
    new_dirs = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest):
        if dest.is_file() and is_verified(res, root):
            return dest  # another process fetched it while this one waited for the lock
        clean_stale_parts(dest)
        try:
            return _download_locked(res, root, dest, progress, timeout, stream)
        except DataError:
            if new_dirs:  # the folders this call made: leave nothing, not even the lock file
                _unlink(lock_path(dest))
            for d in new_dirs:  # innermost first, if still empty
                try:
                    d.rmdir()
                except OSError:
                    break
            raise


def _download_locked(res: Resource, root: Path, dest: Path, progress, timeout, stream) -> Path:
    failures: list[str] = []
    checksum_failures = 0
    for url in res.urls:
        try:
            return _write_verified(res, root, dest,
                                   lambda out: _stream(url, out, res, timeout, progress, stream))
        except ChecksumError as e:
            checksum_failures += 1
            failures.append(f"{url}: checksum mismatch ({e})")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            failures.append(f"{url}: {type(e).__name__}: {e}")
    cls = ChecksumError if checksum_failures == len(res.urls) else FetchError
    raise cls(f"could not fetch {res.relpath}; nothing was kept:\n  " + "\n  ".join(failures))


def _write_verified(res: Resource, root: Path, dest: Path, fill) -> Path:
    """Put ``res`` in place at ``dest``: ``fill(out)`` writes its bytes to a temporary file beside
    ``dest``, hashing them, and returns ``(hexdigest, size)``; the file is renamed into place
    only if both match the pinned ones (:class:`ChecksumError` otherwise, leaving nothing)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            got, size = fill(out)
        if res.size is not None and size != res.size:
            raise ChecksumError(f"{size} bytes, expected {res.size}")
        if got != res.checksum.hexdigest:
            raise ChecksumError(f"{res.checksum.algo} {got}, expected {res.checksum.hexdigest}")
        _umask_mode(tmp)
        os.replace(tmp, dest)  # hashed while written; nothing else has the new file yet
        remember(root, res.relpath, stat_key(dest.stat()), str(res.checksum))
        return dest
    finally:
        _unlink(tmp)


def find_local(source: Path, *resources: Resource) -> tuple[Resource, Path]:
    """The first of ``resources`` that the local copy ``source`` (a folder laid out as the data
    directory) holds, at its own path or gzipped beside it (``<path>.gz``), and that file."""
    source = Path(source)
    for res in resources:
        for path in (source / res.relpath, source / f"{res.relpath}.gz"):
            if path.is_file():
                return res, path
    names = " or ".join(f"{r.relpath}[.gz]" for r in resources)
    raise MissingDataError(f"{source} holds no {names}")


def copy_in(res: Resource, source: Path, root: Path | None = None) -> Path:
    """Put ``res`` into the data directory from the local file ``source`` (gunzipped when it ends
    in ``.gz`` and ``res`` does not), verified as a download is: hashed while written to a
    temporary file and renamed into place only if it matches. A verified file in place is kept."""
    root = data_dir() if root is None else Path(root)
    source, dest = Path(source), res.path(root)
    gunzip = source.name.endswith(".gz") and not res.relpath.endswith(".gz")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest):
        if dest.is_file():
            try:
                return verify(res, root)
            except ChecksumError:
                pass  # replaced by the verified copy, or kept if the copy is not verified either
        clean_stale_parts(dest)
        try:
            return _write_verified(res, root, dest, lambda out: _copy(source, out, res, gunzip))
        except ChecksumError as e:
            raise ChecksumError(f"{source} is not the official {Path(res.relpath).name} ({e}); "
                                f"nothing was copied: replace it with a good copy") from None


def _copy(source: Path, out, res: Resource, gunzip: bool) -> tuple[str, int]:
    """Copy (or gunzip) ``source`` into ``out`` while hashing it as ``res`` says."""
    try:
        size = res.size
        if size is None and res.checksum.algo == "git-sha1":
            size = _gunzipped_size(source) if gunzip else source.stat().st_size
        h = res.checksum.hasher(size)
        n = 0
        with (gzip.open(source, "rb") if gunzip else open(source, "rb")) as f:
            while chunk := f.read(_CHUNK):
                out.write(chunk)
                h.update(chunk)
                n += len(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise FormatError(f"{source} is not a complete gzip file ({e}): replace it with a good "
                          f"copy") from None
    except OSError as e:
        if e.filename is None or Path(e.filename) != source:
            raise  # writing failed: the data directory's problem
        raise DataError(f"cannot read {source}: {e.strerror or e}") from None
    return h.hexdigest(), n


def _gunzipped_size(path: Path) -> int:
    """The size a single-member gzip file decompresses to, from its trailer (ISIZE)."""
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def _stream(url, out, res: Resource, timeout, progress, stream):
    req = urllib.request.Request(url, headers={"User-Agent": "adamlab-data/1"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        length = r.headers.get("Content-Length")
        total = int(length) if length is not None else res.size
        if res.checksum.algo == "git-sha1" and total is None:
            raise ValueError("server sent no Content-Length, needed for a git-sha1 checksum")
        h = res.checksum.hasher(total)
        bar = ProgressBar(Path(res.relpath).name, total, stream) if progress else None
        size = 0
        try:
            while chunk := r.read(_CHUNK):
                out.write(chunk)
                h.update(chunk)
                size += len(chunk)
                if bar:
                    bar.update(len(chunk))
        finally:
            if bar:
                bar.close()
        if length is not None and size != int(length):
            raise http.client.IncompleteRead(b"", int(length) - size)
    return h.hexdigest(), size


def ensure(res: Resource, root: Path | None = None) -> Path:
    """Return the verified path of ``res``, fetching it first if it is missing and we may."""
    root = data_dir() if root is None else Path(root)
    if not res.path(root).is_file() and res.urls:
        download(res, root)  # refuses, naming the file, under ADAMLAB_OFFLINE=1
    return verify(res, root)


def safe_extract(archive: Path, dest: Path, members_prefix: str, dataset: str = "",
                 done=None) -> Path:
    """Extract the tarball ``archive`` into ``dest`` and return ``dest / members_prefix``.

    Uses tarfile's ``filter="data"`` (no absolute paths, no ``..``, no links outside, no device
    files; Python >= 3.11.4). Extraction goes into a temporary folder ``dest/.extract-*`` and the
    top-level folder ``members_prefix`` is renamed into place only after the whole archive was
    read, so an interrupted extraction leaves nothing half-written and a reader sees either no
    folder or the complete one. It runs under the lock of ``dest/members_prefix``: with
    ``done(final)`` given and true once the lock is held (another process extracted meanwhile),
    nothing is extracted. Under the lock, ``.extract-*`` folders left by killed processes are
    removed.
    """
    archive, dest = Path(archive), Path(dest)
    if not hasattr(tarfile, "data_filter"):
        raise DataError(
            f"extracting {archive} safely needs tarfile's filter='data', which Python "
            f"{sys.version.split()[0]} lacks; use Python >= 3.11.4")
    fix = f"delete it and run `{fetch_command(dataset)}`" if dataset else "delete it and fetch it again"

    def fill(tmp: Path) -> None:
        try:
            with tarfile.open(archive, "r:*") as tf:
                tf.extractall(tmp, filter="data")
        except tarfile.FilterError as e:
            name = e.tarinfo.name if getattr(e, "tarinfo", None) is not None else "?"
            raise FormatError(
                f"refusing unsafe member {name!r} in {archive} ({e}); the archive may have been "
                f"tampered with: {fix}") from e
        except tarfile.TarError as e:
            raise FormatError(f"{archive} is not a readable tar archive ({e}): {fix}") from e
        if not (tmp / members_prefix).is_dir():
            raise FormatError(f"{archive} has no top-level folder {members_prefix}/")

    return _into_place(dest, members_prefix, fill, done, lambda e: _unwritable(archive, dest, e))


def copy_tree(source: Path, dest: Path, name: str, done=None) -> Path:
    """Copy the folder ``source`` to ``dest/name`` as :func:`safe_extract` extracts: whole or
    not at all, once however many processes ask."""
    return _into_place(Path(dest), name, lambda tmp: shutil.copytree(source, tmp / name), done,
                       lambda e: _unwritable(source, dest, e))


def _into_place(dest: Path, name: str, fill, done, unwritable) -> Path:
    """Under the lock of ``dest/name``: unless ``done(final)``, let ``fill(tmp)`` make
    ``tmp/name`` in a temporary folder ``dest/.extract-*`` and rename it into place (what was
    there is removed). ``unwritable(OSError)`` gives the error when ``dest`` cannot be written."""
    final = dest / name
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise unwritable(e) from e
    with file_lock(final) as held:
        if done is not None and done(final):
            return final
        if held:
            clean_stale_dirs(dest)
        try:
            tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".extract-{name}-"))
        except OSError as e:
            raise unwritable(e) from e
        try:
            fill(tmp)
            if final.exists():  # incomplete or not the archive's: moved out of the way, then removed
                os.replace(final, tmp / ".replaced")
            os.replace(tmp / name, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _unwritable(archive: Path, dest: Path, e: OSError) -> DataError:
    return DataError(f"cannot extract {archive} into {dest} ({e.strerror or e}): the data directory "
                     f"is not writable; extract it once on a writable copy, or set {ENV_DATA} to a "
                     f"writable folder")
