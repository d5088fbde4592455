"""Where independent runs execute: one ``concurrent.futures.Executor`` interface.

* :class:`InlineExecutor`: in the calling process, lazily: a call runs when its result is asked
  for or when :func:`as_completed` reaches it, so the caller writes each result before the next
  run starts (notebooks, tests).
* :func:`process_pool`: a local ``ProcessPoolExecutor`` of the ``spawn`` context whose workers
  start with one BLAS thread each: ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS`` and ``ADAMLAB_NUM_THREADS`` are set by the initializer before the worker
  imports NumPy (this module imports no NumPy, and the initializer arguments are plain ints; a
  spawned child imports NumPy only when it unpickles its first task). threadpoolctl is not
  installed, so the variables are the only lever, and they act only before NumPy is loaded.
  Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the caller decides
  (:func:`stop` cancels what is queued and kills the workers; their checkpoints stay).
* :func:`dask_executor`: ``dask.distributed.Client(address).get_executor()``; Dask's nanny starts
  workers with ``OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1`` by default
  (``distributed.nanny.pre-spawn-environ``); the runner then also makes ``adamlab.optim``
  update with one thread. Connecting, and every wait, has a deadline (:data:`DASK_TIMEOUT_S`).

The same numbers whatever runs them: BLAS may split a product differently with 2 threads than
with 1 (the quick Adam curve of Fig 2a differed by about 1e-9 from epoch 0), and the thread count
can only be set before NumPy is imported. So the CLI runs even ``--workers 1`` in one spawned
worker process with one BLAS thread (:func:`make_executor`), never in its own process, whose NumPy
may already be loaded; every CLI executor then computes with one BLAS thread. The inline executor
computes with whatever the calling process has; a checkpoint records it (``runner.numerics``), so
a resume under other settings is refused rather than mixing two curves.

Workers return results to the caller, which writes them: no shared filesystem is needed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "ADAMLAB_NUM_THREADS")
#: Seconds to connect to a Dask scheduler, to wait for a lost one to come back, or to wait with
#: no worker at all, before the sweep stops with an error ($ADAMLAB_DASK_TIMEOUT overrides it).
DASK_TIMEOUT_S = float(os.environ.get("ADAMLAB_DASK_TIMEOUT", "30"))
POLL_S = 0.5  # how often a wait looks at the executor's health


class ExecutorError(RuntimeError):
    """The executor cannot go on: the Dask scheduler is unreachable or lost, no worker is left."""


class _LazyFuture(Future):
    """A future whose call runs in the calling thread when it is first needed."""

    def __init__(self, fn, args, kwargs) -> None:
        super().__init__()
        self._call = (fn, args, kwargs)

    def run(self) -> None:
        call, self._call = self._call, None
        if call is None or not self.set_running_or_notify_cancel():
            return
        fn, args, kwargs = call
        try:
            self.set_result(fn(*args, **kwargs))
        except BaseException as e:  # delivered through the future, as a pool does
            self.set_exception(e)
            if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit: stop here
                raise

    def result(self, timeout=None):
        self.run()
        return super().result(timeout)

    def exception(self, timeout=None):
        self.run()
        return super().exception(timeout)


class InlineExecutor(Executor):
    """Runs each submitted call in the calling process, when its result is first needed."""

    def submit(self, fn, /, *args, **kwargs):
        return _LazyFuture(fn, args, kwargs)


def as_completed(futures, executor=None, poll: float = POLL_S):
    """Yield ``futures`` as they finish. Lazy (inline) ones run here, one at a time, in order;
    while waiting on others, ``executor.check()`` (where it has one) runs every ``poll`` seconds
    and raises :class:`ExecutorError` when the executor cannot deliver them any more, or has
    cancelled one (a Dask scheduler that closed cancels every task)."""
    pending = list(futures)
    check = getattr(executor, "check", None)
    while pending:
        done = [f for f in pending if f.done()]
        if not done:
            lazy = next((f for f in pending if isinstance(f, _LazyFuture)), None)
            if lazy is not None:
                lazy.run()
                done = [lazy]
            else:
                finished, _ = wait(pending, timeout=poll, return_when=FIRST_COMPLETED)
                if not finished:
                    if check is not None:
                        check()
                    continue
                done = [f for f in pending if f in finished]
        for f in done:
            if f.cancelled():
                raise ExecutorError("the executor cancelled a call it was running (was the Dask "
                                    "scheduler closed or lost?); stopped")
            pending.remove(f)
            yield f


def stop(executor, futures=()) -> None:
    """Cancel every queued call and stop the running ones now (an interrupt, a fatal error)."""
    for f in futures:
        f.cancel()
    halt = getattr(executor, "stop", None)
    if halt is not None:
        halt()
    else:
        executor.shutdown(wait=False, cancel_futures=True)


def _init_worker(threads: int) -> None:
    """Process-pool initializer: set the BLAS thread variables before NumPy is imported, and leave
    SIGINT to the caller."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for k in THREAD_VARS:
        os.environ[k] = str(threads)
    if "numpy" in sys.modules:  # pragma: no cover - only if the spawn context is bypassed
        print("adamlab: warning: NumPy was imported before the worker set its BLAS threads",
              file=sys.stderr)


class _Pool(ProcessPoolExecutor):
    def stop(self) -> None:
        """Cancel the queued calls and kill the worker processes at once."""
        procs = list((getattr(self, "_processes", None) or {}).values())
        for p in procs:
            p.kill()
        self.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.join(5)


def process_pool(workers: int, threads: int = 1) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each with ``threads`` BLAS thread(s)."""
    import multiprocessing as mp

    return _Pool(max_workers=workers, mp_context=mp.get_context("spawn"),
                 initializer=_init_worker, initargs=(threads,))


class _DaskExecutor(Executor):
    """The Client's executor, with deadlines: connecting, a lost scheduler, no workers left."""

    def __init__(self, address: str, timeout: float | None = None) -> None:
        try:
            from distributed import Client
        except ImportError as e:
            raise ExecutorError("--scheduler needs the 'distributed' package "
                                "(pip install distributed)") from e
        self.address = address
        self.timeout = DASK_TIMEOUT_S if timeout is None else float(timeout)
        box: dict = {}

        def connect():  # Client's own timeout misses a peer that accepts and never answers
            try:
                box["client"] = Client(address, timeout=f"{self.timeout}s",
                                       set_as_default=False)
            except BaseException as e:  # noqa: BLE001 - any failure is "not a scheduler"
                box["error"] = e

        t = threading.Thread(target=connect, daemon=True, name="adamlab-dask-connect")
        t.start()
        t.join(self.timeout + 5)
        if "client" not in box:
            why = (f"{type(box['error']).__name__}: {box['error']}" if "error" in box
                   else f"no answer within {self.timeout:.0f} s")
            raise ExecutorError(f"cannot connect to the Dask scheduler at {address!r} ({why}); "
                                "check the address (another service may be listening there)")
        self.client = box["client"]
        self._ex = self.client.get_executor(pure=False)
        self._bad_since: float | None = None

    def submit(self, fn, /, *args, **kwargs):
        return self._ex.submit(fn, *args, **kwargs)

    def check(self) -> None:
        """Raise :class:`ExecutorError` once the scheduler is lost, or no worker is left, for
        longer than the timeout."""
        status = self.client.status
        # the Client's cached view, refreshed every 2 s: no call that could hang
        workers = (getattr(self.client, "_scheduler_identity", None) or {}).get("workers", {})
        if status == "running" and workers:
            self._bad_since = None
            return
        now = time.monotonic()
        if self._bad_since is None:
            self._bad_since = now
        if now - self._bad_since >= self.timeout:
            what = (f"lost the Dask scheduler at {self.address!r}" if status != "running"
                    else f"the Dask cluster at {self.address!r} has no workers")
            raise ExecutorError(f"{what} for {self.timeout:.0f} s; stopped waiting")

    def stop(self) -> None:
        self.shutdown(wait=False)

    def shutdown(self, wait=True, *, cancel_futures=False):
        try:
            self._ex.shutdown(wait=False)  # cancels what is left; the caller waited already
        except Exception:  # noqa: BLE001 - a lost scheduler: nothing left to cancel
            pass
        try:
            self.client.close(timeout=min(self.timeout, 10))
        except Exception:  # noqa: BLE001
            pass


def dask_executor(address: str, timeout: float | None = None) -> Executor:
    return _DaskExecutor(address, timeout)


def default_workers() -> int:
    """The number of cores (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """``--scheduler`` → Dask; otherwise a pool of ``workers`` spawned processes (default: the
    number of cores), one BLAS thread each, even for ``workers == 1`` (see the module docstring)."""
    if scheduler:
        return dask_executor(scheduler)
    n = default_workers() if workers is None else workers
    if n < 1:
        raise ValueError(f"--workers must be at least 1, got {n}")
    return process_pool(n, threads=1)
