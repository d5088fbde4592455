"""Shared test setup: the data directory for the real-data tests.

The tests find the data as the loaders do, with one step in between:

1. ``$ADAMLAB_DATA``, if set;
2. else, if ``../shared/data`` (beside the repository, or ``$ADAMLAB_SHARED_DATA``) exists, a data
   directory prepared from it in ``.data/`` (gitignored), and ``ADAMLAB_DATA`` is set to it;
3. else the per-user cache directory, where ``adamlab data fetch`` puts the data
   (``$XDG_CACHE_HOME/adamlab`` or ``~/.cache/adamlab``): ``adamlab.data.data_dir()``.

A real-data test skips, naming the directory it looked in, only when its dataset is not there.
Step 2 is ``adamlab data fetch --from ../shared/data`` (:func:`adamlab.data.fetch_from`), dataset
by dataset, with the checksums of a download: MNIST's ``.gz`` files copied, the IMDB reviews
extracted from the repacked tarball with ``imdb.vocab`` beside them, the five CIFAR-10 training
batches gunzipped with ``batches.meta.txt`` (the partial test batch is not the official file and
is not used). Nothing under ``../shared`` is written. A dataset prepared completely gets a marker,
so a later session costs nothing; an interrupted one is continued. A dataset that cannot be
prepared is reported in the skip (or, under ADAMLAB_REQUIRE_DATA=1, failure) message of its
tests; the other tests still run.

Tests never touch the network: ``ADAMLAB_OFFLINE=1`` is set unless a test clears it (the
download tests use a loopback server). ``ADAMLAB_REQUIRE_DATA=1`` (set by ``.ci/run``) turns the
skips of real-data tests into failures for the datasets CI has (MNIST, IMDB, CIFAR-10 training).
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import io
import json
import multiprocessing
import os
import traceback
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ADAMLAB_SHARED_DATA", REPO.parent / "shared" / "data"))
PREPARED = REPO / ".data"
MARKER_NAME = ".prepared-v2"  # inside each dataset folder
CI_DATASETS = ("mnist", "imdb", "cifar10-train")


def prepare_data_dir(shared: Path = SHARED_DATA, dest: Path = PREPARED) -> dict[str, str]:
    """Prepare ``dest`` from ``shared`` with ``adamlab data fetch --from``, dataset by dataset;
    return {dataset: error} for failures. A dataset whose marker exists is complete and kept."""
    from adamlab.data import DATASETS, DataError, fetch_from

    dest.mkdir(parents=True, exist_ok=True)
    if all((dest / name / MARKER_NAME).is_file() for name in DATASETS):
        return {}
    errors = {}
    with open(dest / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers wait for the first one
        for name in DATASETS:
            if (dest / name / MARKER_NAME).is_file():
                continue
            try:
                fetch_from(name, shared, dest)
                (dest / name / MARKER_NAME).write_text(f"adamlab data fetch {name} --from {shared}\n")
            except (DataError, OSError) as e:
                errors[name] = (f"`adamlab data fetch {name} --from {shared}` into {dest} failed: "
                                f"{type(e).__name__}: {e}")
    return errors


PREPARE_ERRORS: dict[str, str] = {}


def pytest_configure(config):
    os.environ.setdefault("ADAMLAB_OFFLINE", "1")
    if not os.environ.get("ADAMLAB_DATA") and SHARED_DATA.is_dir():
        PREPARE_ERRORS.update(prepare_data_dir())
        os.environ["ADAMLAB_DATA"] = str(PREPARED)


def require_data() -> bool:
    from adamlab.data import _store

    return _store.env_flag("ADAMLAB_REQUIRE_DATA")


def missing(dataset: str, reason: str):
    """Skip a real-data test, or fail it under ADAMLAB_REQUIRE_DATA=1 for a dataset CI has."""
    prep = PREPARE_ERRORS.get(dataset.split("-")[0])
    if prep:
        reason = f"{reason} ({prep})"
    if require_data() and dataset in CI_DATASETS:
        pytest.fail(f"ADAMLAB_REQUIRE_DATA=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def listing(folder: Path) -> list[str]:
    """The names in ``folder`` (none if it does not exist), without its lock files
    (``.<name>.lock``, left in place on purpose: see ``adamlab.data._store.file_lock``);
    temporaries (``.part`` files, ``.extract-*`` folders) do count."""
    folder = Path(folder)
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


LOOKUP = ("$ADAMLAB_DATA, else ../shared/data prepared into .data/, else the per-user cache "
          "that `adamlab data fetch` fills")


def find_data_root() -> Path | None:
    """The data directory the tests use (after pytest_configure): the loaders' own lookup,
    ``adamlab.data.data_dir()``; None if it is not a directory."""
    from adamlab.data import _store

    root = _store.data_dir()
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data directory (see the module docstring), or a skip/fail if there is none."""
    from adamlab.data import _store

    root = find_data_root()
    if root is None:
        missing("mnist", f"no data directory at {_store.data_dir()} (looked up as {LOOKUP}); "
                         f"run `adamlab data fetch all`")
    return root


class LoopbackServer:
    """A local HTTP server for download tests: ``routes[path] = (body, mode)`` with mode
    ``"ok"``, ``"drop"`` (announces the full length, sends half, closes) or ``"404"``."""

    def __init__(self):
        import http.server
        import threading

        self.routes: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body, mode = server.routes.get(self.path, (b"", "404"))
                if mode == "404":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    server = LoopbackServer()
    yield server
    server.close()


@pytest.fixture
def online(monkeypatch):
    """Allow downloads (only ever from the loopback server in these tests)."""
    monkeypatch.setenv("ADAMLAB_OFFLINE", "0")


# --- read-only folders and simultaneous processes, for the data tests ----------------------------


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: from then on every write under ``folder`` fails with EROFS, as on a
    read-only mount or a shared copy.

    chmod cannot make a folder read-only for root (tests run as root in CI containers), and
    mounting needs privileges, so the write primitives themselves are wrapped: ``os.open`` with a
    write flag, ``open``/``io.open`` with a write mode, and ``mkdir``, ``rmdir``, ``unlink``,
    ``rename``, ``replace``, ``chmod``, ``utime``, ``link``, ``symlink`` (tempfile and shutil go
    through these). Reading is untouched.
    """
    folders: list[str] = []

    def under(path, dir_fd=None) -> bool:
        if isinstance(path, int):
            return False
        path = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        path = os.path.abspath(path)
        return any(path == f or path.startswith(f + os.sep) for f in folders)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_os_open = os.open

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND) and under(path, dir_fd):
            refuse(path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", os_open)
    real_open = builtins.open

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and under(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)

    def one_path(real):
        def wrapped(path, *args, dir_fd=None, **kwargs):
            if under(path, dir_fd):
                refuse(path)
            return real(path, *args, **({"dir_fd": dir_fd} if dir_fd is not None else {}), **kwargs)
        return wrapped

    def two_paths(real):
        def wrapped(src, dst, *args, **kwargs):
            if under(src, kwargs.get("src_dir_fd")) or under(dst, kwargs.get("dst_dir_fd")):
                refuse(dst)
            return real(src, dst, *args, **kwargs)
        return wrapped

    for name in ("mkdir", "rmdir", "unlink", "remove", "chmod", "utime"):
        monkeypatch.setattr(os, name, one_path(getattr(os, name)))
    for name in ("rename", "replace", "link", "symlink"):
        monkeypatch.setattr(os, name, two_paths(getattr(os, name)))

    def make(folder: Path) -> Path:
        folders.append(os.path.abspath(folder))
        return Path(folder)

    return make


def at_once(target, n: int = 3, timeout: float = 120.0) -> list:
    """Run ``target(i)`` for i < n in n processes started together (forked, so they inherit the
    test's monkeypatched pins; a barrier releases them at the same instant). Each returns a
    JSON-serialisable value; return them in order, or fail naming every process that raised."""
    import tempfile

    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(n)
    with tempfile.TemporaryDirectory() as out:
        def child(i):
            try:
                barrier.wait(timeout)
                result = {"ok": target(i)}
            except BaseException as e:  # reported to the parent, which fails the test
                result = {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"}
            with open(os.path.join(out, f"{i}.json"), "w") as f:
                json.dump(result, f)

        procs = [ctx.Process(target=child, args=(i,)) for i in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout)
        results = []
        for i, p in enumerate(procs):
            if p.is_alive():
                p.kill()
                pytest.fail(f"process {i} of {n} did not finish in {timeout} s")
            with open(os.path.join(out, f"{i}.json")) as f:
                results.append(json.load(f))
    errors = [f"process {i}: {r['error']}" for i, r in enumerate(results) if "error" in r]
    if errors:
        pytest.fail(f"{len(errors)} of {n} processes failed:\n" + "\n".join(errors), pytrace=False)
    return [r["ok"] for r in results]


def log_calls(monkeypatch, owner, name: str, log: Path, delay: float = 0.0):
    """Wrap ``owner.name`` so that every call, in this process or a forked one, appends a line to
    ``log`` (O_APPEND: whole lines from concurrent writers) and then, after ``delay`` seconds
    (to widen a race), runs the original."""
    import time

    real = getattr(owner, name)

    def wrapped(*args, **kwargs):
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {name}\n".encode())
        finally:
            os.close(fd)
        time.sleep(delay)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)

