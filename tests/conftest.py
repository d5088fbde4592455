"""Shared test setup: the data directory for the real-data tests.

If ``ADAMLAB_DATA`` is not set and ``../shared/data`` (beside the repository) exists, a data
directory is prepared from it in ``.data/`` (gitignored) and ``ADAMLAB_DATA`` points there:

- ``mnist/``: the four official ``.gz`` files, copied;
- ``imdb/aclImdb/``: the repacked review archive extracted (``tarfile`` ``filter="data"``), with
  ``imdb.vocab`` decompressed beside the reviews, as in the official layout;
- ``cifar10/cifar-10-batches-bin/``: the five training batches decompressed, plus
  ``batches.meta.txt``. The partial test batch is deliberately not used.

Only this fixture knows the names of the files in ``../shared/data``; ``src/`` knows only the
official layout. Nothing under ``../shared`` is written. Each dataset is prepared in a temporary
folder, marked complete and renamed into place, so an interrupted run is redone and a finished
one costs nothing the next time. A dataset that cannot be prepared is reported in the skip (or,
under ADAMLAB_REQUIRE_DATA=1, failure) message of its tests; the other tests still run.

Tests never touch the network: ``ADAMLAB_OFFLINE=1`` is set unless a test clears it (the
download tests use a loopback server). ``ADAMLAB_REQUIRE_DATA=1`` (set by ``.ci/run``) turns the
skips of real-data tests into failures for the datasets CI has (MNIST, IMDB, CIFAR-10 training).
"""

from __future__ import annotations

import fcntl
import gzip
import os
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ADAMLAB_SHARED_DATA", REPO.parent / "shared" / "data"))
PREPARED = REPO / ".data"
MARKER_NAME = ".prepared-v1"  # inside each dataset folder
CI_DATASETS = ("mnist", "imdb", "cifar10-train")

_MNIST = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_IMDB_REPACK = "imdb/aclImdb-labeled-reviews-repack.tar.gz"
_IMDB_VOCAB_GZ = "imdb/imdb.vocab.gz"
_CIFAR_DIR = "cifar10/cifar-10-batches-bin"


def _gunzip(src: Path, dst: Path) -> None:
    with gzip.open(src, "rb") as fi, open(dst, "wb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)


def _prepare_mnist(shared: Path, out: Path) -> None:
    (out / "mnist").mkdir(parents=True)
    for name in _MNIST:
        shutil.copyfile(shared / "mnist" / name, out / "mnist" / name)


def _prepare_imdb(shared: Path, out: Path) -> None:
    if not hasattr(tarfile, "data_filter"):  # filter="data" came with Python 3.11.4 / 3.12
        raise tarfile.TarError(f"extracting safely needs tarfile's filter='data', which Python "
                               f"{sys.version.split()[0]} lacks; use Python >= 3.11.4")
    (out / "imdb").mkdir(parents=True)
    with tarfile.open(shared / _IMDB_REPACK, "r:gz") as tf:
        tf.extractall(out / "imdb", filter="data")
    _gunzip(shared / _IMDB_VOCAB_GZ, out / "imdb" / "aclImdb" / "imdb.vocab")


def _prepare_cifar10(shared: Path, out: Path) -> None:
    dst = out / _CIFAR_DIR
    dst.mkdir(parents=True)
    for i in range(1, 6):
        _gunzip(shared / _CIFAR_DIR / f"data_batch_{i}.bin.gz", dst / f"data_batch_{i}.bin")
    shutil.copyfile(shared / _CIFAR_DIR / "batches.meta.txt", dst / "batches.meta.txt")


_STEPS = {"mnist": _prepare_mnist, "imdb": _prepare_imdb, "cifar10": _prepare_cifar10}


def prepare_data_dir(shared: Path = SHARED_DATA, dest: Path = PREPARED) -> dict[str, str]:
    """Prepare ``dest`` from ``shared``, dataset by dataset; return {dataset: error} for failures.

    Each dataset is built in a temporary folder, its marker written inside it, and the folder
    renamed into place, so a dataset folder that exists with its marker is complete and is kept
    (with its caches) on later runs.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if all((dest / name / MARKER_NAME).is_file() for name in _STEPS):
        return {}
    errors = {}
    with open(dest / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name, step in _STEPS.items():
            if (dest / name / MARKER_NAME).is_file():
                continue
            tmp = dest / f".prep-{name}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                step(shared, tmp)
                (tmp / name / MARKER_NAME).write_text(f"prepared from {shared}\n")
                if (dest / name).exists():
                    shutil.rmtree(dest / name)
                os.replace(tmp / name, dest / name)
            except (OSError, EOFError, tarfile.TarError) as e:
                errors[name] = f"preparing {dest / name} from {shared} failed: {type(e).__name__}: {e}"
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return errors


PREPARE_ERRORS: dict[str, str] = {}


def pytest_configure(config):
    os.environ.setdefault("ADAMLAB_OFFLINE", "1")
    if not os.environ.get("ADAMLAB_DATA") and SHARED_DATA.is_dir():
        PREPARE_ERRORS.update(prepare_data_dir())
        os.environ["ADAMLAB_DATA"] = str(PREPARED)


def require_data() -> bool:
    return os.environ.get("ADAMLAB_REQUIRE_DATA", "").strip() not in ("", "0")


def missing(dataset: str, reason: str):
    """Skip a real-data test, or fail it under ADAMLAB_REQUIRE_DATA=1 for a dataset CI has."""
    prep = PREPARE_ERRORS.get(dataset.split("-")[0])
    if prep:
        reason = f"{reason} ({prep})"
    if require_data() and dataset in CI_DATASETS:
        pytest.fail(f"ADAMLAB_REQUIRE_DATA=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data directory ($ADAMLAB_DATA), or a skip/fail if there is none."""
    env = os.environ.get("ADAMLAB_DATA")
    if not env or not Path(env).is_dir():
        missing("mnist", "no data directory: set ADAMLAB_DATA or provide ../shared/data")
    return Path(env)


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
