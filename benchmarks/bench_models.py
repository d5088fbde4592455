"""Speed of a training step of the paper's models (float32, batch 128) against the GEMM peak.

Usage::

    python benchmarks/bench_models.py                 # readable report, exit code 0
    python benchmarks/bench_models.py --json out.json # also write the figures as JSON
    python benchmarks/bench_models.py --check         # exit 1 if a target is missed
    python benchmarks/bench_models.py --threads 1     # only one thread count (default: 1 and 2)

What is measured (time.perf_counter; after warm-up, best and median of several repeats):

* the machine's GEMM peak: ``np.matmul`` of two square 2048 x 2048 float32 matrices (into a
  preallocated output), three runs before each model and at the end; the best of all of them is
  the reference, so a moment when other processes slow the GEMM does not flatter the models;
* one full training step (``model.loss_and_grads`` + ``Adam.update``), the forward+backward pass
  alone (``loss_and_grads``) and ``Adam.update`` alone, taking turns, at batch 128 of random
  float32 data, for the MLP 784-1000-1000-10 and the CNN c64-c64-c128-1000 on 32x32x3 inputs;
* the VAE 784-500-50 step;
* one epoch of multinomial logistic regression on MNIST-sized random data (60,000 x 784, batch 128,
  a fresh permutation, minibatch gathering included), and one epoch of the sparse binary logistic
  regression on IMDB-sized random bag-of-words (25,000 x 10,000 CSR, about 1.2% non-zero, batch 128,
  input dropout 0.5).

FLOPs: each step's count is 2·m·n·k summed over the GEMMs it actually executes, counted by
running the step once with ``np.matmul`` wrapped (the layers call ``np.matmul`` for every dense
product; the first layer of each network computes no input gradient, so that GEMM is not counted).
Element-wise work (im2col, col2im, pooling, activations, Adam) is not credited. The fraction of
peak is FLOPs / best step time / best GEMM rate; the fraction from the median times is shown too.
Seconds per epoch extrapolate the best step: 60,000 images / 128 steps for MNIST models, 50,000
for CIFAR-10.

Threads: each thread count runs in a fresh subprocess with OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
MKL_NUM_THREADS and ADAMLAB_NUM_THREADS set before NumPy is imported (threadpoolctl, which could
change BLAS threads in-process, is not a dependency), and calls adamlab.optim.set_num_threads. The
worker asks OpenBLAS for its thread count and core type (through ctypes, when NumPy's bundled
OpenBLAS exposes them) and reports them. OPENBLAS_CORETYPE is reported as set or unset.

Targets, at 1 thread: MLP full step >= 0.70 of the GEMM peak, CNN full step >= 0.45, MLP
forward+backward >= 0.80. Timings are noisy when other processes share the cores (the load average
at the start is printed); the fractions are ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# Imports no NumPy (its helpers import it lazily), so the thread settings below still apply.
from adamlab.experiments.provenance import cpu_model, openblas_info

ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ADAMLAB_NUM_THREADS",
            "OPENBLAS_CORETYPE")
THREAD_VARS = ENV_VARS[:4]
BATCH = 128
MNIST_TRAIN, CIFAR_TRAIN, IMDB_TRAIN = 60_000, 50_000, 25_000
TARGETS = {"mlp_step": 0.70, "cnn_step": 0.45, "mlp_fwd_bwd": 0.80}  # at 1 thread
TARGET_NAMES = {"mlp_step": "MLP full step", "cnn_step": "CNN full step",
                "mlp_fwd_bwd": "MLP forward+backward"}


# ----------------------------------------------------------------------------- worker side


def timed(fn, repeats, warmup):
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def count_gemm_flops(fn):
    """Run ``fn`` once with np.matmul wrapped; return 2·m·n·k summed over the products it made."""
    import numpy as np

    original = np.matmul
    total = [0]

    def counting(a, b, *args, **kwargs):
        a_, b_ = np.asarray(a), np.asarray(b)
        if a_.ndim == 2 and b_.ndim == 2:
            total[0] += 2 * a_.shape[0] * a_.shape[1] * b_.shape[1]
        else:
            raise RuntimeError(f"unexpected matmul operands {a_.shape} @ {b_.shape}")
        return original(a, b, *args, **kwargs)

    np.matmul = counting
    try:
        fn()
    finally:
        np.matmul = original
    return total[0]




def worker(threads, repeats, warmup):
    """Measure everything at one thread count (env vars already set by the parent)."""
    import numpy as np
    import scipy.sparse as sp

    import adamlab.optim as optim
    from adamlab.models import MLP, VAE, LogisticRegression, SparseLogisticRegression
    from adamlab.models.cnn import CNN
    from adamlab.optim import Adam

    optim.set_num_threads(threads)
    rng = np.random.default_rng(0)
    out = {"threads": threads, "adamlab_threads": optim.get_num_threads(),
           "openblas": openblas_info(), "env": {k: os.environ.get(k) for k in ENV_VARS}}

    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b = rng.standard_normal((2048, 2048), dtype=np.float32)
    c = np.empty_like(a)

    gemm_times = []

    def gemm_probe():
        """A few GEMMs between the measurements: the peak is the best of all of them."""
        gemm_times.extend(timed(lambda: np.matmul(a, b, out=c), 3, 1))

    gemm_probe()

    def model_case(name, model, x, y, reps, epoch_images):
        gemm_probe()
        opt = Adam(lr=1e-3)
        step_rng = np.random.default_rng(1)

        def fwd_bwd():
            model.loss_and_grads(x, y, rng=step_rng)

        def step():
            model.loss_and_grads(x, y, rng=step_rng)
            opt.update(model.params, model.grads)

        flops = count_gemm_flops(fwd_bwd)
        dtypes = {p.dtype for p in model.params.values()} | {g.dtype for g in model.grads.values()}
        if dtypes != {np.dtype(np.float32)}:
            raise RuntimeError(f"{name}: parameters or gradients of dtype {dtypes}")
        def update():
            opt.update(model.params, model.grads)

        # The three kinds take turns, so that they see the same conditions on a shared machine.
        kinds = {"step": step, "fwd_bwd": fwd_bwd, "adam": update}
        times = {k: [] for k in kinds}
        for _ in range(warmup):
            for fn in kinds.values():
                fn()
        for _ in range(reps):
            for kind, fn in kinds.items():
                times[kind].extend(timed(fn, 1, 0))
        result = {}
        for kind, t in times.items():
            result[kind] = {"best_ms": 1e3 * min(t), "median_ms": 1e3 * statistics.median(t),
                            "repeats": reps, "gflop": 0.0 if kind == "adam" else flops / 1e9,
                            "s_per_epoch": min(t) * epoch_images / x.shape[0]}
        result["n_params"] = sum(p.size for p in model.params.values())
        out[name] = result

    x = rng.random((BATCH, 784), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    model_case("mlp", MLP(rng=rng), x, y, 5 * repeats, MNIST_TRAIN)
    model_case("cnn", CNN(rng=rng), rng.standard_normal((BATCH, 32, 32, 3), dtype=np.float32),
               y, repeats, CIFAR_TRAIN)
    model_case("vae", VAE(rng=rng), x, None, 5 * repeats, MNIST_TRAIN)

    # One epoch of logistic regression on MNIST-sized data, minibatches gathered as in training.
    data = rng.random((MNIST_TRAIN, 784), dtype=np.float32)
    labels = rng.integers(0, 10, MNIST_TRAIN)
    model, opt = LogisticRegression(rng=rng), Adam(lr=1e-3)
    epoch_rng = np.random.default_rng(2)

    def epoch_dense():
        order = epoch_rng.permutation(MNIST_TRAIN)
        for s in range(0, MNIST_TRAIN, BATCH):
            i = order[s:s + BATCH]
            model.loss_and_grads(data[i], labels[i], rng=epoch_rng)
            opt.update(model.params, model.grads)

    gemm_probe()
    times = timed(epoch_dense, 3, 1)
    out["logreg_epoch"] = {"best_s": min(times), "median_s": statistics.median(times),
                           "steps": -(-MNIST_TRAIN // BATCH)}

    # IMDB-sized sparse bag of words: binary CSR, about 120 distinct words per review.
    bow = sp.random(IMDB_TRAIN, 10_000, density=0.012, format="csr", dtype=np.float32, rng=rng)
    bow.data[:] = 1.0
    bow_labels = rng.integers(0, 2, IMDB_TRAIN)
    sparse_model = SparseLogisticRegression(input_dropout=0.5, rng=rng)
    sparse_opt = Adam(lr=1e-3)

    def epoch_sparse():
        order = epoch_rng.permutation(IMDB_TRAIN)
        for s in range(0, IMDB_TRAIN, BATCH):
            i = order[s:s + BATCH]
            sparse_model.loss_and_grads(bow[i], bow_labels[i], rng=epoch_rng)
            sparse_opt.update(sparse_model.params, sparse_model.grads)

    times = timed(epoch_sparse, 3, 1)
    out["imdb_epoch"] = {"best_s": min(times), "median_s": statistics.median(times),
                         "steps": -(-IMDB_TRAIN // BATCH), "nnz": int(bow.nnz)}

    gemm_probe()
    flops = 2.0 * 2048**3
    out["gemm"] = {"peak_gflop_s": flops / min(gemm_times) / 1e9,
                   "median_gflop_s": flops / statistics.median(gemm_times) / 1e9,
                   "worst_gflop_s": flops / max(gemm_times) / 1e9, "runs": len(gemm_times)}
    return out


# ----------------------------------------------------------------------------- parent side


def run_worker(threads, repeats, warmup):
    env = dict(os.environ)
    for k in THREAD_VARS:
        env[k] = str(threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads),
           "--repeats", str(repeats), "--warmup", str(warmup)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker with {threads} thread(s) failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def fractions(r, peak):
    """Fraction of ``peak`` GFLOP/s from the best and from the median time."""
    gflop = r["gflop"]
    return gflop / (r["best_ms"] / 1e3) / peak, gflop / (r["median_ms"] / 1e3) / peak




def report(results, load):
    import numpy as np

    first = results[0]
    print(f"Model training-step benchmark: float32, batch {BATCH}, random data; best of repeats "
          f"after warm-up (median in brackets)")
    ob = first["openblas"]
    print(f"machine: {platform.machine()} {cpu_model()}, os.cpu_count() = {os.cpu_count()}; "
          f"python {platform.python_version()}, numpy {np.__version__}, "
          f"BLAS {ob.get('library', '?')} (core {ob.get('corename', '?')})")
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    print(f"OPENBLAS_CORETYPE={coretype}" if coretype else
          "OPENBLAS_CORETYPE is unset (OpenBLAS picks its kernels for the detected CPU)")
    if load is not None:
        busy = load > 0.5 * (os.cpu_count() or 1)
        print(f"1-minute load average at start: {load:.2f}"
              + ("  WARNING: other processes compete for the cores; figures are unreliable"
                 if busy else ""))
    rows = []
    for r in results:
        peak = r["gemm"]["peak_gflop_s"]
        print()
        print(f"--- {r['threads']} thread(s): OPENBLAS_NUM_THREADS=OMP_NUM_THREADS="
              f"{r['env']['OPENBLAS_NUM_THREADS']}, OpenBLAS reports "
              f"{r['openblas'].get('threads', '?')}, adamlab.optim threads {r['adamlab_threads']}")
        g = r["gemm"]
        print(f"GEMM 2048^3 float32, {g['runs']} runs spread over the measurements: peak (best) "
              f"{peak:.1f} GFLOP/s [median {g['median_gflop_s']:.1f}, worst "
              f"{g['worst_gflop_s']:.1f}]")
        print(f"{'':34s} {'GFLOP':>7s} {'ms':>18s} {'GFLOP/s':>8s} {'of peak':>15s} "
              f"{'s/epoch':>8s}")
        for key, title in (("mlp", "MLP 784-1000-1000-10"), ("cnn", "CNN c64-c64-c128-1000"),
                           ("vae", "VAE 784-500-50")):
            for kind, label in (("step", "full step"), ("fwd_bwd", "fwd+bwd")):
                m = r[key][kind]
                best, med = fractions(m, peak)
                print(f"{title + ' ' + label:34s} {m['gflop']:7.3f} {m['best_ms']:8.2f} "
                      f"[{m['median_ms']:8.2f}] {m['gflop'] / m['best_ms'] * 1e3:8.1f} "
                      f"{best:6.3f} [{med:6.3f}] {m['s_per_epoch']:8.2f}")
                rows.append((r["threads"], f"{key}_{kind}", best))
            m = r[key]["adam"]
            print(f"{'  of which Adam.update':34s} {r[key]['n_params'] / 1e6:6.2f}M "
                  f"{m['best_ms']:8.2f} [{m['median_ms']:8.2f}]  (parameters, ms)")
        lr, im = r["logreg_epoch"], r["imdb_epoch"]
        print(f"logistic regression, one MNIST-sized epoch (60,000 x 784, {lr['steps']} steps): "
              f"{lr['best_s']:.3f} s [{lr['median_s']:.3f}] "
              f"({1e3 * lr['best_s'] / lr['steps']:.2f} ms/step)")
        print(f"sparse logistic regression, one IMDB-sized epoch (25,000 x 10,000 CSR, "
              f"{im['nnz']:,} non-zeros, dropout 0.5, {im['steps']} steps): {im['best_s']:.3f} s "
              f"[{im['median_s']:.3f}]")
    print()
    met = {}
    one = [r for r in results if r["threads"] == 1]
    if not one:
        print("targets are set at 1 thread; run with --threads 1 to check them")
        return met
    for (threads, key, frac) in rows:
        if threads == 1 and key in TARGETS:
            met[key] = frac >= TARGETS[key]
            print(f"target {TARGET_NAMES[key]:22s} at 1 thread: {frac:.3f} of the GEMM peak "
                  f"(>= {TARGETS[key]:.2f}): {'MET' if met[key] else 'MISSED'}")
    return met


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts to measure (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repeats per CNN measurement (5x for the MLP and the VAE)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error(f"--repeats must be >= 1 and --warmup >= 0, got {args.repeats}, "
                     f"{args.warmup}")
    if any(t < 1 for t in args.threads):
        parser.error(f"--threads must be positive, got {args.threads}")
    if args.worker is not None:
        json.dump(worker(args.worker, args.repeats, args.warmup), sys.stdout)
        return 0

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results = [run_worker(t, args.repeats, args.warmup) for t in args.threads]
    met = report(results, load)
    all_met = bool(met) and all(met.values())
    print("all targets met" if all_met else ("TARGETS MISSED" if met else "targets not checked"))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"results": results, "targets": TARGETS, "met": met, "all_met": all_met,
                       "load_average_1min": load}, f, indent=2, sort_keys=True)
            f.write("\n")
    return 1 if (args.check and not all_met) else 0


if __name__ == "__main__":
    sys.exit(main())
