"""What the experiment runner adds to a training step, each paper preset's epoch time, and workers.

Usage::

    python benchmarks/bench_runner.py                  # all three panels, readable report
    python benchmarks/bench_runner.py --panels fig1-mnist --repeats 2 --json out.json
    python benchmarks/bench_runner.py --skip-parallel  # no processes-vs-threads comparison

Measured, each in a fresh subprocess with one BLAS thread (``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``ADAMLAB_NUM_THREADS`` = 1 set before NumPy is imported):

* **Runner overhead**, per panel at its paper preset (the real data when it is present, otherwise
  random data of the same shape, said in the report): one epoch through
  :func:`adamlab.experiments.runner.train_run` (permutation, minibatch gathering, logging,
  divergence checks; its scheduled full-training-set evaluation timed apart) against ``steps``
  times the model's own step (``loss_and_grads`` + ``Adam.update`` on one fixed minibatch, as
  ``bench_models.py`` times it, on a second copy of the model). The two are interleaved step by
  step (the fixed step runs in the runner's ``on_step`` hook and its time is subtracted from the
  epoch's), so a shared machine's load hits both alike; ``--repeats`` epochs, the best ratio.
  Target: ratio ≤ 1.05. The time of gathering an epoch's minibatches alone is shown beside it:
  where a step is as cheap as logistic regression's, the random-row copy of each minibatch (and
  the cache misses it brings) is a sizeable part of it.
* **The per-epoch time** of each paper preset on one core (Adam; the update rules of the other
  optimizers cost about as much), with the evaluation time, and from it an estimate of the wall
  time of ``adamlab run PANEL --preset paper`` (tuning without widenings, then every run).
* **Processes or threads** for the MLP 784-1000-1000-10 (batch 128): ``--steps`` steps in one
  process with 1 BLAS thread, the same in two processes at once with 1 thread each, and in one
  process with 2 BLAS threads (and ``adamlab.optim`` threads). Throughput in steps per second.

Timings are noisy when other processes share the cores; the 1-minute load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ADAMLAB_NUM_THREADS")
PANELS = ("fig1-mnist", "fig1-imdb", "fig2a-mlp")


# ----------------------------------------------------------------------------- worker side


def _data_or_random(spec):
    """The panel's data, or random data of the same shape (and a note) when it is missing."""
    import numpy as np
    import scipy.sparse as sp

    from adamlab.experiments import runner

    try:
        runner.load_data(spec.data)
        return "real"
    except Exception as e:  # noqa: BLE001 - any missing-data error: fall back, and say so
        rng = np.random.default_rng(0)
        if spec.data.dataset == "imdb":
            x = sp.random(25_000, spec.data.num_words, density=0.0127, format="csr",
                          dtype=np.float32, rng=rng)
            x.data[:] = 1.0
            y = rng.integers(0, 2, 25_000)
        else:
            x = rng.random((60_000, 784), dtype=np.float32)
            y = rng.integers(0, 10, 60_000)
        runner._DATA[spec.data] = (x, y)
        return f"random ({type(e).__name__}: {e})"


def worker_overhead(panel: str, repeats: int) -> dict:
    import numpy as np

    from adamlab.experiments import runner, specs

    spec = specs.get_spec(panel, "paper")
    source = _data_or_random(spec)
    x, y = runner.load_data(spec.data)
    opt_spec = spec.optimizer("adam+dropout" if panel == "fig1-imdb" else "adam")
    hyper = {"lr": 1e-3}
    n, b = x.shape[0], spec.batch_size
    steps = -(-n // b)
    # The model's own step, on a second copy of the model and one fixed minibatch, is timed
    # *inside* the runner's epoch (one fixed step after each runner step, through on_step), so
    # both see the same load on a shared machine; the runner's share is the epoch minus those.
    g = runner.generators(spec, 0, opt_spec.name)
    model = runner.build_model(spec, opt_spec, g["init"])
    opt = runner.build_optimizer(opt_spec, hyper)
    xb, yb = x[:b], y[:b]
    rng = np.random.default_rng(1)
    spent = [0.0]

    def fixed_step(epoch, step):
        t0 = time.perf_counter()
        model.loss_and_grads(xb, yb, rng=rng)
        opt.update(model.params, model.grads)
        spent[0] += time.perf_counter() - t0

    def gather_only():
        order = np.random.default_rng(2).permutation(n)
        t0 = time.perf_counter()
        for s in range(0, n, b):
            i = order[s:s + b]
            x[i], y[i]
        return time.perf_counter() - t0

    import dataclasses
    one_epoch = dataclasses.replace(spec, epochs=1, seed_epochs=None)
    fixed, epoch, evals, gather = [], [], [], []
    for _ in range(3):
        fixed_step(0, 0)  # warm-up (buffers, caches)
    for _ in range(repeats):
        spent[0] = 0.0
        r = runner.train_run(one_epoch, opt_spec.name, hyper, 0, on_step=fixed_step)
        fixed.append(spent[0])
        epoch.append(r["epoch_seconds"][0] - r["eval_seconds"][-1] - spent[0])
        evals.append(r["eval_seconds"][-1])
        gather.append(gather_only())
    ratios = [e / f for e, f in zip(epoch, fixed)]
    from adamlab.experiments.specs import workload
    return {"panel": panel, "data": source, "steps": steps, "n_train": int(n),
            "fixed_steps_s": fixed, "epoch_train_s": epoch, "eval_s": evals, "gather_s": gather,
            "ratios": ratios, "ratio": min(ratios), "epochs": spec.epochs,
            "workload": workload(spec)}


def worker_steps(steps: int) -> dict:
    import numpy as np

    from adamlab.models import MLP
    from adamlab.optim import Adam

    rng = np.random.default_rng(0)
    model, opt = MLP(rng=rng), Adam(lr=1e-3)
    x = rng.random((128, 784), dtype=np.float32)
    y = rng.integers(0, 10, 128)
    for _ in range(3):
        model.loss_and_grads(x, y, rng=rng)
        opt.update(model.params, model.grads)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.loss_and_grads(x, y, rng=rng)
        opt.update(model.params, model.grads)
    return {"steps": steps, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- parent side


def _env(threads: int) -> dict:
    env = dict(os.environ)
    for k in THREAD_VARS:
        env[k] = str(threads)
    return env


def _cmd(*args) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--worker", *map(str, args)]


def _run(args, threads=1) -> dict:
    p = subprocess.run(_cmd(*args), env=_env(threads), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def parallel(steps: int) -> dict:
    one = _run(("steps", steps), 1)
    t0 = time.perf_counter()
    procs = [subprocess.Popen(_cmd("steps", steps), env=_env(1), stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall2 = time.perf_counter() - t0
    two_threads = _run(("steps", steps), 2)
    return {
        "one_process_one_thread": steps / one["seconds"],
        "two_processes_one_thread_each": 2 * steps / max(o["seconds"] for o in outs),
        "two_processes_wall_incl_startup_s": wall2,
        "one_process_two_threads": steps / two_threads["seconds"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--panels", nargs="+", choices=PANELS, default=list(PANELS))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150, help="MLP steps per process (parallel test)")
    ap.add_argument("--skip-parallel", action="store_true")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        kind, arg = a.worker[0], a.worker[1]
        out = worker_overhead(arg, a.repeats) if kind == "overhead" else worker_steps(int(arg))
        print(json.dumps(out))
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"runner benchmark; cores {os.cpu_count()}, 1-minute load average at start {load}")
    report = {"load_average_1min": load, "panels": {}, "parallel": None}
    for panel in a.panels:
        r = _run(("overhead", panel, "--repeats", a.repeats))
        report["panels"][panel] = r
        w = r["workload"]
        epoch = min(r["epoch_train_s"])
        ev = min(r["eval_s"])
        print(f"\n{panel} (paper preset, {r['data']} data, {r['n_train']} examples, "
              f"{r['steps']} steps/epoch, 1 thread)")
        print(f"  epoch through the runner {epoch:.2f} s (+ full-set evaluation {ev:.2f} s); "
              f"{r['steps']} x the model's own step {min(r['fixed_steps_s']):.2f} s; "
              f"ratio {r['ratio']:.3f} (target <= 1.05: {'MET' if r['ratio'] <= 1.05 else 'MISSED'})")
        print(f"  of the difference, gathering the minibatches alone (x[idx], y[idx]) takes "
              f"{min(r['gather_s']):.2f} s per epoch")
        total = (w["tune_epochs"] + w["run_epochs"]) * epoch + w["evaluations"] * ev
        r["estimate_one_core_s"] = total
        print(f"  paper preset: {w['tune_epochs']} tuning epochs + {w['run_epochs']} run epochs "
              f"({w['runs']} runs) + {w['evaluations']} evaluations = {total / 3600:.2f} h on one "
              "core")
    if not a.skip_parallel:
        p = parallel(a.steps)
        report["parallel"] = p
        print(f"\nMLP 784-1000-1000-10, batch 128, {a.steps} steps per process (steps/s):")
        print(f"  1 process, 1 BLAS thread        {p['one_process_one_thread']:.1f}")
        print(f"  2 processes, 1 BLAS thread each {p['two_processes_one_thread_each']:.1f}")
        print(f"  1 process, 2 BLAS threads       {p['one_process_two_threads']:.1f}")
        best = max(("processes", p["two_processes_one_thread_each"]),
                   ("threads", p["one_process_two_threads"]), key=lambda kv: kv[1])
        print(f"  faster on this machine: {best[0]}")
        for panel, r in report["panels"].items():
            speed = best[1] / p["one_process_one_thread"]
            print(f"  {panel}: estimated {r['estimate_one_core_s'] / speed / 3600:.2f} h with "
                  f"2 cores ({best[0]}, speed-up {speed:.2f})")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
