"""The experiments engine under interruption, faults and Dask errors.

Subprocess tests run the CLI on a tiny synthetic panel, ``tiny``, registered by :data:`BOOT` (the
CLI reads its panels from ``specs.PANELS`` and ``cli.PANEL_NAMES``; nothing in the package is
test-only). Its seed 0 runs 2 epochs, seeds 1 and 2 run 400 (about 10 s each), so a test can
interrupt a sweep with one result written and runs in progress. Checkpoints and progress lines
are written after every epoch (``$ADAMLAB_CHECKPOINT_EVERY_S=0``, ``$ADAMLAB_PROGRESS_EVERY_S=0``).
Dask tests use loopback addresses only, with deadlines of a few seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from adamlab import optim
from adamlab.cli import main
from adamlab.experiments import cli as ecli
from adamlab.experiments import driver, executors, results as store, runner, specs, tuning
from adamlab.experiments.executors import ExecutorError, InlineExecutor, dask_executor
from adamlab.experiments.runner import CheckpointError, train_run
from adamlab.experiments.specs import ADAM, DataSpec, Grid, ModelSpec, OptimizerSpec, PanelSpec, TuneSpec

REPO = Path(__file__).resolve().parent.parent

SPEC_CODE = """
from adamlab.experiments.specs import ADAM, DataSpec, Grid, ModelSpec, OptimizerSpec, PanelSpec, TuneSpec
def tiny(preset="quick", long=400, budget=1):
    return PanelSpec(
        panel="tiny", preset=preset, title="tiny synthetic MLP",
        data=DataSpec("synthetic", n_train=2000, n_features=20, n_classes=3, subset_seed=1),
        model=ModelSpec("mlp", sizes=(20, 128, 3), input_dropout=0.2, hidden_dropout=0.5),
        optimizers=(OptimizerSpec("adam", "Adam", Grid(-6, -5), fixed=ADAM),
                    OptimizerSpec("adam2", "Adam", Grid(-5, -4), fixed=ADAM)),
        epochs=long, seed_epochs=(2, long, long), tune=TuneSpec(budget_epochs=budget, max_widenings=0),
        seeds=(0, 1, 2))
"""
exec(SPEC_CODE)  # defines tiny() here too

BOOT = SPEC_CODE + """
import os, sys
from adamlab.experiments import cli, specs
specs.PANELS["tiny"] = lambda preset: tiny(preset, budget=int(os.environ.get("TINY_BUDGET", 1)))
cli.PANEL_NAMES += ("tiny",)
from adamlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(**more):
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "ADAMLAB_CHECKPOINT_EVERY_S": "0",
            "ADAMLAB_PROGRESS_EVERY_S": "0", "ADAMLAB_DASK_TIMEOUT": "3", **more}


def _start(tmp_path, *argv, **env):
    out, err = open(tmp_path / "out.txt", "w"), open(tmp_path / "err.txt", "w")
    return subprocess.Popen([sys.executable, "-c", BOOT, *argv], env=_env(**env), stdout=out,
                            stderr=err, start_new_session=True)


def _wait_for(cond, proc, limit=90.0):
    t0 = time.monotonic()
    while not cond():
        assert proc.poll() is None, "the command ended before the test could interrupt it"
        assert time.monotonic() - t0 < limit, "no progress"
        time.sleep(0.1)


def _finish(proc, limit=15.0):
    t0 = time.monotonic()
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"still running {limit} s after the signal")
    return time.monotonic() - t0


def _wait_gone(session, limit=10.0):
    t0 = time.monotonic()
    while subprocess.run(["pgrep", "-s", str(session)], capture_output=True).stdout:
        assert time.monotonic() - t0 < limit, "a worker outlived the command"
        time.sleep(0.2)


@pytest.fixture
def tiny_panel(monkeypatch):
    """``tiny`` as a panel of this process's CLI."""
    monkeypatch.setitem(specs.PANELS, "tiny", tiny)
    monkeypatch.setattr(ecli, "PANEL_NAMES", ecli.PANEL_NAMES + ("tiny",))
    return tiny()


# ----------------------------------------------------------------------------- interrupts


@pytest.mark.parametrize("sig,workers", [(signal.SIGINT, "2"), (signal.SIGTERM, "1")],
                         ids=["sigint-pool", "sigterm-one-worker"])
def test_a_signal_stops_the_sweep_keeps_what_finished_and_says_how_to_continue(
        tmp_path, sig, workers):
    res = tmp_path / "res"
    argv = ["run", "tiny", "--preset", "quick", "--optimizer", "adam", "--workers", workers,
            "--results", str(res)]
    proc = _start(tmp_path, *argv)
    spec = tiny()
    done = store.result_path(res, spec, "adam", 0)
    n_ck = int(workers)  # seed 0 finishes at once; seeds 1 (and 2) are then running
    cks = [runner.checkpoint_path(store.checkpoints_dir(res), spec, "adam", s) / "checkpoint.json"
           for s in (1, 2)[:n_ck]]
    _wait_for(lambda: done.is_file() and all(c.is_file() for c in cks), proc)
    os.killpg(proc.pid, sig)
    assert _finish(proc) < 15
    err = (tmp_path / "err.txt").read_text()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"interrupted ({signal.Signals(sig).name}); kept 1 finished result")
    assert f"and {n_ck} checkpoint" in last
    assert last.endswith(f"continue with: adamlab {' '.join(argv)} --resume")
    assert json.loads(done.read_text())["seed"] == 0
    assert all(c.is_file() for c in cks) and not store.result_path(res, spec, "adam", 1).exists()
    # progress outside a terminal: one line per run per epoch
    assert "tiny adam seed 1: epoch 1/400, cost " in err
    # nothing left running: the workers are gone with the command
    _wait_gone(proc.pid)


def test_an_interrupt_during_tuning_keeps_the_grid_points_and_a_second_one_exits_at_once(
        tmp_path):
    res = tmp_path / "res"
    argv = ["tune", "tiny", "--optimizer", "adam", "--workers", "1", "--results", str(res)]
    proc = _start(tmp_path, *argv, TINY_BUDGET="100")  # 2 grid points of about 3 s each
    spec = tiny(budget=100)
    partial = tuning.partial_path(store.checkpoints_dir(res), spec, "adam")
    _wait_for(partial.is_file, proc)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    assert _finish(proc) < 15
    # 130 from the second signal's handler; or, if the first one's exit had already reached the
    # interpreter's last steps (which reset the handlers), death by that SIGINT: at once either way
    assert proc.returncode in (130, -signal.SIGINT)
    assert "Traceback" not in (tmp_path / "err.txt").read_text()
    assert len(json.loads(partial.read_text())["points"]) == 1
    assert not store.tuning_path(res, spec, "adam").exists()
    _wait_gone(proc.pid)


def test_nothing_to_resume_is_not_offered_resume(tmp_path, tiny_panel, capsys, monkeypatch):
    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(tuning, "tune_point", stop)
    monkeypatch.setattr(executors, "make_executor", lambda *a: InlineExecutor())
    assert main(["tune", "tiny", "--optimizer", "adam", "--workers", "1",
                 "--results", str(tmp_path)]) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "kept 0 finished results and 0 checkpoints" in last
    assert last.endswith(f"run again with: adamlab tune tiny --preset quick --optimizer adam "
                         f"--workers 1 --results {tmp_path}")


def test_inline_sweep_writes_each_result_before_the_next_run(tmp_path, monkeypatch):
    spec = tiny(long=3)
    real = driver.train_run
    started = []

    def run(spec, name, hyper, seed, **kw):
        started.append(seed)
        # the result of every earlier run is on disk before this one starts
        assert [s for s in started[:-1]
                if store.result_path(tmp_path, spec, name, s).is_file()] == started[:-1]
        if seed == 2:
            raise KeyboardInterrupt
        return real(spec, name, hyper, seed, **kw)

    monkeypatch.setattr(driver, "train_run", run)
    kept = driver.Kept()
    with pytest.raises(KeyboardInterrupt):
        driver.run_panel(spec, InlineExecutor(), tmp_path, optimizers=["adam"], kept=kept)
    assert started == [0, 1, 2]
    assert [p.name for p in kept.results] == ["adam-seed0.json", "adam-seed1.json"]
    assert kept.todo == [("adam", 2)] and kept.summary() == \
        "kept 2 finished results, 1 tuning record and 0 checkpoints"


# ----------------------------------------------------------------------------- tuning resume


def test_an_interrupted_search_resumes_from_its_finished_points(tmp_path, monkeypatch):
    spec = tiny(long=3)
    whole = tuning.tune_optimizer(spec, "adam", InlineExecutor())
    partial = tmp_path / "tune-adam.json"
    real, calls = tuning.tune_point, []

    def point(spec, name, hyper):
        calls.append(hyper["lr"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(spec, name, hyper)

    monkeypatch.setattr(tuning, "tune_point", point)
    with pytest.raises(KeyboardInterrupt):
        tuning.tune_optimizer(spec, "adam", InlineExecutor(), partial=partial)
    assert len(json.loads(partial.read_text())["points"]) == 1
    calls.clear()
    rec = tuning.tune_optimizer(spec, "adam", InlineExecutor(), partial=partial, resume=True)
    assert len(calls) == len(whole["points"]) - 1  # the saved point is not run again
    strip = ("wall_seconds", "worker_pids", "machine")
    assert [{k: v for k, v in p.items() if k not in strip} for p in rec["points"]] == \
        [{k: v for k, v in p.items() if k not in strip} for p in whole["points"]]
    assert rec["chosen"] == whole["chosen"]
    other = dataclasses.replace(spec, data=DataSpec("synthetic", n_train=200, n_features=20, n_classes=3,
                                       subset_seed=1))
    with pytest.raises(CheckpointError, match="another experiment"):
        tuning.tune_optimizer(other, "adam", InlineExecutor(), partial=partial, resume=True)


# ----------------------------------------------------------------------------- same numbers


def test_one_worker_and_two_give_identical_curves(tmp_path, tiny_panel):
    spec = tiny(long=3)
    argv = ["--optimizer", "adam", "--seed", "1", "--seed", "2"]
    for w in ("1", "2"):
        store.write_tuning(tmp_path / w, spec, {"optimizer": "adam", "chosen": {"lr": 1e-3},
                                                "spec_hash": spec.spec_hash()})
    specs.PANELS["tiny"] = lambda preset: tiny(preset, long=3)
    assert main(["run", "tiny", *argv, "--workers", "1", "--results", str(tmp_path / "1")]) == 0
    assert main(["run", "tiny", *argv, "--workers", "2", "--results", str(tmp_path / "2")]) == 0
    for s in (1, 2):
        a, b = (json.loads(store.result_path(tmp_path / w, spec, "adam", s).read_text())
                for w in ("1", "2"))
        assert a["train_cost"] == b["train_cost"] and a["full_cost"] == b["full_cost"]
        assert a["machine"]["thread_env"]["OPENBLAS_NUM_THREADS"] == "1"  # not this process
        assert a["machine"]["pid"] != os.getpid()


def test_a_resume_under_other_thread_settings_is_refused(tmp_path, monkeypatch):
    spec = tiny(long=3)
    ck = tmp_path / "ck"
    monkeypatch.setattr(optim.base, "_num_threads", 3)
    train_run(spec, "adam", {"lr": 1e-3}, 0, checkpoint_dir=ck, checkpoint_every_s=0,
              epochs=2)
    meta = json.loads((ck / "checkpoint.json").read_text())
    assert meta["identity"]["numerics"]["optim_threads"] == 3
    assert set(meta["identity"]["numerics"]) >= {"blas_threads", "dtype", "engine"}
    monkeypatch.setattr(optim.base, "_num_threads", 1)
    with pytest.raises(CheckpointError, match="optim_threads 3 \\(now 1\\)"):
        train_run(spec, "adam", {"lr": 1e-3}, 0, checkpoint_dir=ck, resume=True, epochs=2)
    monkeypatch.setattr(optim.base, "_num_threads", 3)  # the same settings: it continues
    assert train_run(spec, "adam", {"lr": 1e-3}, 0, checkpoint_dir=ck, resume=True,
                     epochs=2)["resumed_at_epochs"] == [2]


# ----------------------------------------------------------------------------- OS errors


def _tuned(results, spec):
    for o in spec.optimizers:
        point = {"hyper": {"lr": 1e-3}, "criterion": 1.0}
        store.write_tuning(results, spec, {"optimizer": o.name, "chosen": {"lr": 1e-3},
                                           "spec_hash": spec.spec_hash(), "chosen_criterion": 1.0,
                                           "points": [point], "flagged": False, "at_edge": {}})


def _one_line_error(capsys, what):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert what in line and "kept 1 finished result" in line
    return line


def test_a_full_disk_is_one_line_and_keeps_what_finished(tmp_path, tiny_panel, capsys,
                                                         monkeypatch):
    specs.PANELS["tiny"] = lambda preset: tiny(preset, long=3)
    spec = tiny(long=3)
    _tuned(tmp_path, spec)
    real, n = os.replace, []

    def replace(src, dst):
        if str(dst).endswith(".json") and "-seed" in str(dst):
            n.append(dst)
            if len(n) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    assert main(["run", "tiny", "--optimizer", "adam", "--workers", "1",
                 "--results", str(tmp_path)]) == 2
    line = _one_line_error(capsys, "No space left on device")
    assert "continue with: adamlab run tiny" in line
    assert len(list((tmp_path / "tiny" / "quick").glob("adam-seed*.json"))) == 1


def test_a_result_that_cannot_be_replaced_is_one_line(tmp_path, tiny_panel, capsys):
    specs.PANELS["tiny"] = lambda preset: tiny(preset, long=3)
    spec = tiny(long=3)
    _tuned(tmp_path, spec)
    store.result_path(tmp_path, spec, "adam", 1).mkdir(parents=True)  # a folder in the way
    assert main(["run", "tiny", "--optimizer", "adam", "--seed", "0", "--seed", "1",
                 "--workers", "1", "--results", str(tmp_path)]) == 2
    _one_line_error(capsys, "adam-seed1.json")


def test_a_results_folder_that_vanishes_is_one_line(tmp_path, tiny_panel, capsys, monkeypatch):
    import shutil

    specs.PANELS["tiny"] = lambda preset: tiny(preset, long=3)
    spec = tiny(long=3)
    _tuned(tmp_path, spec)
    real = store.write_result

    def write_then_vanish(results, spec, run, tune):
        path = real(results, spec, run, tune)
        shutil.rmtree(results / "tiny")
        return path

    monkeypatch.setattr(store, "write_result", write_then_vanish)
    assert main(["run", "tiny", "--optimizer", "adam", "--workers", "1",
                 "--results", str(tmp_path)]) == 2
    _one_line_error(capsys, "the results folder vanished")
    assert not (tmp_path / "tiny").exists()  # not silently recreated


# ----------------------------------------------------------------------------- smaller


def test_progress_lines_outside_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(runner, "PROGRESS_EVERY_S", 0.0)
    train_run(tiny(long=3), "adam", {"lr": 1e-3}, 1, progress="lines")
    lines = capsys.readouterr().err.splitlines()
    assert [x.split(", cost ")[0] for x in lines] == [f"tiny adam seed 1: epoch {e}/3"
                                                      for e in (1, 2, 3)]
    assert all(float(x.split(", cost ")[1]) > 0 for x in lines)


def test_repeated_optimizers_and_seeds_run_once_and_workers_are_capped(tmp_path, tiny_panel,
                                                                       capsys):
    specs.PANELS["tiny"] = lambda preset: tiny(preset, long=3)
    _tuned(tmp_path, tiny(long=3))
    assert main(["run", "tiny", "--optimizer", "adam", "--optimizer", "adam", "--seed", "1",
                 "--seed", "1", "--workers", "8", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note: --workers 8 is more than the 1 calls this sweep runs at once; starting 1" in out
    assert out.count("tiny adam seed 1: final cost") == 1


# ----------------------------------------------------------------------------- Dask


def _server(answer: bytes | None):
    """A loopback server that answers every connection with ``answer`` (None: HTTP)."""
    if answer is None:
        h = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        h.daemon_threads = True  # a handler waits for a request line that never comes
        threading.Thread(target=h.serve_forever, daemon=True).start()
        return h.server_address[1], h.shutdown
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()

    def serve():
        while True:
            try:
                c, _ = s.accept()
                c.sendall(answer)
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1], s.close


@pytest.mark.parametrize("answer", [None, b"\xff" * 64 + b"SSH-2.0-OpenSSH_9\r\n"],
                         ids=["http", "garbage"])
def test_an_address_of_another_service_is_one_line_within_seconds(tmp_path, capsys, monkeypatch,
                                                                  answer):
    pytest.importorskip("distributed")
    monkeypatch.setattr(executors, "DASK_TIMEOUT_S", 2.0)
    port, close = _server(answer)
    try:
        t0 = time.monotonic()
        assert main(["run", "fig1-mnist", "--scheduler", f"tcp://127.0.0.1:{port}",
                     "--results", str(tmp_path)]) == 2
        assert time.monotonic() - t0 < 15
    finally:
        close()
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"cannot connect to the Dask scheduler at 'tcp://127.0.0.1:{port}'" in err


@contextlib.contextmanager
def _local_cluster(**kw):
    """A LocalCluster on loopback whose close may not hang the test: distributed's close can
    wait forever on its loop thread (seen once in CI); it is given 10 s in a daemon thread."""
    import distributed

    cluster = distributed.LocalCluster(dashboard_address=None, **kw)
    try:
        yield cluster
    finally:
        closer = threading.Thread(target=cluster.close, kwargs={"timeout": 5}, daemon=True)
        closer.start()
        closer.join(10)


def test_a_cluster_without_workers_stops_the_sweep(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = tiny(long=3)
    _tuned(tmp_path, spec)
    with _local_cluster(n_workers=0, processes=False) as cluster:
        # 5 s, not less: on a loaded machine even the in-process scheduler can take over 2 s
        # to answer the client, which the executor then reports as no scheduler at all
        ex = dask_executor(cluster.scheduler_address, timeout=5)
        kept = driver.Kept()
        t0 = time.monotonic()
        try:
            with pytest.raises(ExecutorError, match="has no workers for 5 s"):
                driver.run_panel(spec, ex, tmp_path, optimizers=["adam"], kept=kept)
        finally:
            ex.shutdown()
        assert time.monotonic() - t0 < 30   # it stops instead of waiting forever
    assert kept.todo == [("adam", 0), ("adam", 1), ("adam", 2)]


def test_a_lost_scheduler_stops_the_sweep(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = tiny(long=3)
    _tuned(tmp_path, spec)
    cluster = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None)
    ex = dask_executor(cluster.scheduler_address, timeout=2)
    closer = threading.Timer(1.0, cluster.close)
    closer.daemon = True   # a close that hangs must not keep the test process alive
    closer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises((ExecutorError, RuntimeError), match="Dask"):
            driver.run_panel(spec, ex, tmp_path, optimizers=["adam"])
    finally:
        ex.shutdown()
    assert time.monotonic() - t0 < 20


def test_sigint_stops_a_dask_sweep(tmp_path):
    distributed = pytest.importorskip("distributed")
    res = tmp_path / "res"
    with _local_cluster(n_workers=1, threads_per_worker=1, processes=True,
                        host="127.0.0.1") as cluster:
        argv = ["run", "tiny", "--preset", "quick", "--optimizer", "adam", "--scheduler",
                cluster.scheduler_address, "--results", str(res)]
        proc = _start(tmp_path, *argv)
        spec = tiny()
        done = store.result_path(res, spec, "adam", 0)
        _wait_for(done.is_file, proc)
        os.killpg(proc.pid, signal.SIGINT)
        assert _finish(proc) < 15
        err = (tmp_path / "err.txt").read_text()
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert "interrupted (SIGINT); kept 1 finished result" in err.strip().splitlines()[-1]
