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
  checksum matched; on any failure the temporary file is deleted.
- With ``ADAMLAB_OFFLINE=1`` nothing touches the network: a missing file raises
  :class:`MissingDataError` naming the file and the ``adamlab data fetch`` command.
"""

from __future__ import annotations

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


def data_dir() -> Path:
    """The data directory: ``$ADAMLAB_DATA`` if set, else a per-user cache directory."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "adamlab" / "data"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "adamlab"


def offline() -> bool:
    """True when ``ADAMLAB_OFFLINE`` is set to anything but ``""``/``0``: never use the network."""
    return os.environ.get(ENV_OFFLINE, "").strip() not in ("", "0")


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


def _load_verified(root: Path) -> dict:
    try:
        with open(root / _VERIFIED_FILE, encoding="utf-8") as f:
            state = json.load(f)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_verified(root: Path, state: dict) -> None:
    try:
        atomic_write_bytes(root / _VERIFIED_FILE, json.dumps(state, indent=1, sort_keys=True).encode())
    except OSError:
        pass  # a read-only data directory still works, it only re-hashes


def remember(root: Path, key: str, stat: list[int], checksum: str) -> None:
    """Record that the file (or tree, see imdb) ``key`` with stat ``stat`` matched ``checksum``."""
    state = _load_verified(root)
    state[key] = {"stat": stat, "checksum": checksum}
    _save_verified(root, state)


def recorded(root: Path, key: str, stat: list[int], checksum: str) -> bool:
    """True if a successful check of ``key`` with exactly this stat and checksum is recorded."""
    rec = _load_verified(root).get(key)
    return isinstance(rec, dict) and rec.get("stat") == stat and rec.get("checksum") == checksum


def _forget(root: Path, relpath: str) -> None:
    state = _load_verified(root)
    if state.pop(relpath, None) is not None:
        _save_verified(root, state)


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
    failures: list[str] = []
    checksum_failures = 0
    for url in res.urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                got, size = _stream(url, out, res, timeout, progress, stream)
            if res.size is not None and size != res.size:
                raise ChecksumError(f"{size} bytes, expected {res.size}")
            if got != res.checksum.hexdigest:
                raise ChecksumError(f"{res.checksum.algo} {got}, expected {res.checksum.hexdigest}")
            _umask_mode(tmp)
            os.replace(tmp, dest)  # hashed while written; nothing else has the new file yet
            remember(root, res.relpath, stat_key(dest.stat()), str(res.checksum))
            return dest
        except ChecksumError as e:
            checksum_failures += 1
            failures.append(f"{url}: checksum mismatch ({e})")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            failures.append(f"{url}: {type(e).__name__}: {e}")
        finally:
            _unlink(tmp)
    for d in new_dirs:  # innermost first: the folders this call created, if still empty
        try:
            d.rmdir()
        except OSError:
            break
    cls = ChecksumError if checksum_failures == len(res.urls) else FetchError
    raise cls(f"could not fetch {res.relpath}; nothing was kept:\n  " + "\n  ".join(failures))


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


def safe_extract(archive: Path, dest: Path, members_prefix: str, dataset: str = "") -> Path:
    """Extract the tarball ``archive`` into ``dest`` and return ``dest / members_prefix``.

    Uses tarfile's ``filter="data"`` (no absolute paths, no ``..``, no links outside, no device
    files; Python >= 3.11.4). Extraction goes into a temporary directory beside ``dest`` and the
    top-level folder ``members_prefix`` is renamed into place only after the whole archive was
    read, so an interrupted extraction leaves nothing half-written.
    """
    archive, dest = Path(archive), Path(dest)
    if not hasattr(tarfile, "data_filter"):
        raise DataError(
            f"extracting {archive} safely needs tarfile's filter='data', which Python "
            f"{sys.version.split()[0]} lacks; use Python >= 3.11.4")
    fix = f"delete it and run `{fetch_command(dataset)}`" if dataset else "delete it and fetch it again"
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / members_prefix
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
    try:
        with tarfile.open(archive, "r:*") as tf:
            tf.extractall(tmp, filter="data")
        if not (tmp / members_prefix).is_dir():
            raise FormatError(f"{archive} has no top-level folder {members_prefix}/")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / members_prefix, final)
    except tarfile.FilterError as e:
        name = e.tarinfo.name if getattr(e, "tarinfo", None) is not None else "?"
        raise FormatError(
            f"refusing unsafe member {name!r} in {archive} ({e}); the archive may have been "
            f"tampered with: {fix}") from e
    except tarfile.TarError as e:
        raise FormatError(f"{archive} is not a readable tar archive ({e}): {fix}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
