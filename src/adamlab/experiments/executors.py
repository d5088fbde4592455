"""Where independent runs execute: one ``concurrent.futures.Executor`` interface.

* :class:`InlineExecutor`: in the calling process, one run after another (notebooks, tests).
* :func:`process_pool`: a local ``ProcessPoolExecutor`` of the ``spawn`` context whose workers
  start with one BLAS thread each: ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS`` and ``ADAMLAB_NUM_THREADS`` are set by the initializer before the worker
  imports NumPy (this module imports no NumPy, and the initializer arguments are plain ints; a
  spawned child imports NumPy only when it unpickles its first task). threadpoolctl is not
  installed, so the variables are the only lever, and they act only before NumPy is loaded.
* :func:`dask_executor`: ``dask.distributed.Client(address).get_executor()``; Dask's nanny starts
  workers with ``OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1`` by default
  (``distributed.nanny.pre-spawn-environ``); the runner then also makes ``adamlab.optim``
  update with one thread.

Workers return results to the caller, which writes them: no shared filesystem is needed.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor

DASK_CONNECT_TIMEOUT = "20s"  # how long --scheduler waits for the scheduler to answer
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "ADAMLAB_NUM_THREADS")


class InlineExecutor(Executor):
    """Runs each submitted call at once in the calling process; returns a finished Future."""

    def submit(self, fn, /, *args, **kwargs):
        f = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - delivered through the future, as a pool does
            if isinstance(e, KeyboardInterrupt):
                raise
            f.set_exception(e)
        return f


def _init_worker(threads: int) -> None:
    """Process-pool initializer: set the BLAS thread variables before NumPy is imported."""
    for k in THREAD_VARS:
        os.environ[k] = str(threads)
    if "numpy" in sys.modules:  # pragma: no cover - only if the spawn context is bypassed
        print("adamlab: warning: NumPy was imported before the worker set its BLAS threads",
              file=sys.stderr)


def process_pool(workers: int, threads: int = 1) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each with ``threads`` BLAS thread(s)."""
    import multiprocessing as mp

    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))


class _DaskExecutor(Executor):
    """The Client's executor, closing the Client on shutdown."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError as e:
            raise RuntimeError("--scheduler needs the 'distributed' package "
                               "(pip install distributed)") from e
        try:
            self.client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise RuntimeError(f"cannot connect to the Dask scheduler at {address!r}: {e}") from e
        self._ex = self.client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs):
        return self._ex.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        try:
            self._ex.shutdown(wait=wait)
        finally:
            self.client.close()


def dask_executor(address: str) -> Executor:
    return _DaskExecutor(address)


def default_workers() -> int:
    """The number of cores (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """``--scheduler`` → Dask; ``workers == 1`` → inline; otherwise a pool of ``workers`` processes
    (default: the number of cores), one BLAS thread each."""
    if scheduler:
        return dask_executor(scheduler)
    n = default_workers() if workers is None else workers
    if n < 1:
        raise ValueError(f"--workers must be at least 1, got {n}")
    if n == 1:
        return InlineExecutor()
    return process_pool(n, threads=1)
