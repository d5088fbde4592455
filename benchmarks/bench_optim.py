"""Speed of adamlab.optim.Adam on 10M float32 parameters, against same-run machine references.

Usage::

    python benchmarks/bench_optim.py                 # readable report, exit code 0
    python benchmarks/bench_optim.py --json out.json # also write the figures as JSON
    python benchmarks/bench_optim.py --check         # exit 1 if a target is missed

What is measured (time.perf_counter; after warm-up, the median of several repeats, best also shown):

* ``Adam.update`` on the parameters laid out as one array of 10M and as ten arrays of 1M;
* the naive transcription of Algorithm 1, ``adamlab.optim.adam.algorithm1_step``, on the same
  arrays: whole-array expressions that allocate a temporary for every operation;
* a streaming triad a = b + s·c in plain NumPy on arrays of the same size, and a GEMM (float32
  2048 x 2048 matmul) for context. Ratios to these are comparable across machines; the absolute
  numbers are not.

Threads: Adam.update splits large updates across worker threads (adamlab.optim.set_num_threads;
default $ADAMLAB_NUM_THREADS, else the CPU count, at most 4), while a NumPy ufunc runs on one core.
A fair bandwidth reference therefore uses the same number of threads: the triad is measured on one
thread and split the same way over Adam's thread count (ufuncs release the GIL), and the bandwidth
target compares Adam.update with the triad at the same thread count. Adam.update on one thread is
reported beside it. The naive transcription is single-threaded by nature; the speed-up target is
taken at Adam's default thread count, and the one-thread speed-up is shown too.

Triad variants: the plain two-pass form (np.multiply(c, s, out=a); np.add(a, b, out=a)) and the same
two passes over cache-sized blocks (the second pass then reads a from cache). The faster of the two
is the reference, so the reference is the fastest plain-NumPy triad we know.

Bytes: one Adam step must read θ, g, m, v and write θ, m, v: 7 arrays x 4 bytes per parameter; the
effective GB/s counts exactly that (extra passes an implementation makes are not credited). The
triad is counted as 3 arrays (read b, c; write a) although NumPy runs it as two passes
(a ← s·c, then a ← a + b: 5 array transfers), so its GB/s understates what the memory system
delivers. Counting it that way matches how Adam is counted (minimum traffic of the operation), but
it makes the reference slower than the true bandwidth, so the Adam/triad ratio flatters Adam. A
single-pass 3-array stream (np.add(b, c, out=a), one thread) is reported beside it for that reason.

Targets: Adam.update at least 3.5x faster than the naive transcription, and at least 0.55 of the
triad's GB/s (both layouts).

Reading the two layouts: the naive transcription makes about 14 whole-array passes, each with a
fresh temporary. On 10M-entry arrays (40 MB) every pass goes to DRAM; on 1M-entry arrays (4 MB)
the temporaries written by one pass are still in the last-level cache for the next, so the naive
code is about twice as fast per parameter there, and the speed-up of a cache-blocked update over it
is correspondingly smaller. The naive baseline is thus layout-dependent; Adam.update is not.

Thread count and BLAS: reported from the environment (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
MKL_NUM_THREADS), os.cpu_count(), the CPU affinity and numpy.show_config(); OPENBLAS_CORETYPE is
reported as set (or unset). Element-wise NumPy runs single-threaded whatever these say; only the
GEMM uses BLAS threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np

from concurrent.futures import ThreadPoolExecutor

import adamlab.optim as optim
from adamlab.optim import Adam
from adamlab.optim.adam import algorithm1_step
from adamlab.experiments.provenance import cpu_model

N_PARAMS = 10_000_000
BLOCK = 1 << 16  # elements per block of the blocked triad (256 KiB per float32 array)
BYTES_ADAM = 7 * 4  # read θ, g, m, v; write θ, m, v (float32)
BYTES_TRIAD = 3 * 4  # read b, c; write a (float32), whatever the number of passes
TARGET_SPEEDUP = 3.5
TARGET_TRIAD_FRACTION = 0.55
ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")


def timed(fn, repeats, warmup):
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times.

    Returns (seconds per run, minor page faults per run). Page faults show whether a function
    gets fresh memory from the kernel on every call (the naive transcription's temporaries do).
    """
    for _ in range(warmup):
        fn()
    times = []
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    return times, faults / repeats


def summary(timing, n_bytes=None, flops=None):
    times, faults = timing
    med, best = statistics.median(times), min(times)
    out = {"median_ms": 1e3 * med, "best_ms": 1e3 * best, "repeats": len(times),
           "minor_page_faults_per_run": faults}
    if n_bytes is not None:
        out["gb_per_s"] = n_bytes / med / 1e9
        out["gb_per_s_best"] = n_bytes / best / 1e9
    if flops is not None:
        out["gflop_per_s"] = flops / med / 1e9
        out["gflop_per_s_best"] = flops / best / 1e9
    return out


def make_layout(n, pieces, rng):
    """params, grads, m, v as dicts of ``pieces`` float32 arrays of n/pieces entries each."""
    size = n // pieces
    names = [f"w{i}" for i in range(pieces)]
    params = {k: rng.standard_normal(size, dtype=np.float32) for k in names}
    grads = {k: rng.standard_normal(size, dtype=np.float32) for k in names}
    return params, grads


def adam_threads():
    """Adam.update's thread count, or None for an adamlab without set_num_threads."""
    get = getattr(optim, "get_num_threads", None)
    return get() if get is not None else None


def bench_adam(n, pieces, repeats, warmup, rng):
    params, grads = make_layout(n, pieces, rng)
    opt = Adam(lr=1e-3)
    ours = summary(timed(lambda: opt.update(params, grads), repeats, warmup), BYTES_ADAM * n)
    threads = adam_threads()
    ours_1 = None
    if threads is not None and threads > 1:
        optim.set_num_threads(1)
        try:
            ours_1 = summary(timed(lambda: opt.update(params, grads), repeats, warmup),
                             BYTES_ADAM * n)
        finally:
            optim.set_num_threads(threads)

    # The naive transcription keeps its own state and rebinds the new arrays it returns.
    state = {k: [p.copy(), np.zeros_like(p), np.zeros_like(p)] for k, p in params.items()}
    step = [0]

    def naive():
        step[0] += 1
        for k, s in state.items():
            s[0], s[1], s[2] = algorithm1_step(s[0], grads[k], s[1], s[2], step[0],
                                               1e-3, 0.9, 0.999, 1e-8)

    naive_times = timed(naive, repeats, warmup)
    dtypes = {s[i].dtype for s in state.values() for i in range(3)}
    if dtypes != {np.dtype(np.float32)}:
        raise RuntimeError(f"naive transcription changed the dtype to {dtypes}")
    return ours, ours_1, summary(naive_times, BYTES_ADAM * n)


def triad_plain(a, b, c, s):
    """a = b + s*c in two whole-array passes, no temporaries."""
    np.multiply(c, s, out=a)
    np.add(a, b, out=a)


def triad_blocked(a, b, c, s):
    """a = b + s*c in two passes per cache-sized block (the add reads a from cache)."""
    for i in range(0, a.size, BLOCK):
        j = min(i + BLOCK, a.size)
        np.multiply(c[i:j], s, out=a[i:j])
        np.add(a[i:j], b[i:j], out=a[i:j])


def bench_streams(n, repeats, warmup, rng, threads):
    """Triads (plain and blocked, on 1 and on ``threads`` threads) and a one-pass add."""
    a = np.empty(n, dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    c = rng.standard_normal(n, dtype=np.float32)
    s = np.float32(1.5)
    # Cheap and noisy (a few ms each), so three times the repeats of the Adam measurements.
    r = 3 * repeats
    out = {
        "triad_plain_1": summary(timed(lambda: triad_plain(a, b, c, s), r, warmup), BYTES_TRIAD * n),
        "triad_blocked_1": summary(timed(lambda: triad_blocked(a, b, c, s), r, warmup),
                                   BYTES_TRIAD * n),
        "add_1": summary(timed(lambda: np.add(b, c, out=a), r, warmup), BYTES_TRIAD * n),
    }
    if threads > 1:
        parts = [(a[i:j], b[i:j], c[i:j]) for i, j in
                 zip(np.linspace(0, n, threads + 1, dtype=int)[:-1],
                     np.linspace(0, n, threads + 1, dtype=int)[1:])]
        with ThreadPoolExecutor(threads) as pool:
            for kind, fn in (("plain", triad_plain), ("blocked", triad_blocked)):
                def run(fn=fn):
                    list(pool.map(lambda p: fn(p[0], p[1], p[2], s), parts))
                out[f"triad_{kind}_{threads}"] = summary(timed(run, r, warmup), BYTES_TRIAD * n)
    return out


def best_triad(streams, threads):
    """The faster of the plain and blocked triad on ``threads`` threads: (label, summary)."""
    kinds = [k for k in (f"triad_plain_{threads}", f"triad_blocked_{threads}") if k in streams]
    key = min(kinds, key=lambda k: streams[k]["median_ms"])
    return key, streams[key]


def bench_gemm(size, repeats, rng):
    x = rng.standard_normal((size, size), dtype=np.float32)
    y = rng.standard_normal((size, size), dtype=np.float32)
    return summary(timed(lambda: x @ y, repeats, warmup=1), flops=2.0 * size**3)


def blas_info():
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return {k: blas.get(k) for k in ("name", "version", "openblas configuration")
                if blas.get(k) is not None}
    except Exception as exc:  # the report must not die on an unusual NumPy build
        return {"error": repr(exc)}




def machine_info():
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ.get(k) for k in ENV_VARS},
        "blas": blas_info(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--n", type=int, default=N_PARAMS, help="number of parameters (10M)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    args = parser.parse_args(argv)
    if args.n < 10 or args.n % 10:
        parser.error(f"--n must be a positive multiple of 10, got {args.n}")

    rng = np.random.default_rng(0)
    info = machine_info()
    threads = adam_threads()
    info["adamlab_threads"] = threads
    streams = bench_streams(args.n, args.repeats, args.warmup, rng, threads or 1)
    ref_key, ref = best_triad(streams, threads or 1)
    ref1_key, ref1 = best_triad(streams, 1)
    layouts = {}
    for pieces in (1, 10):
        label = f"{pieces} x {args.n // pieces:,}"
        ours, ours_1, naive = bench_adam(args.n, pieces, args.repeats, args.warmup, rng)
        r = {
            "adam": ours,
            "naive": naive,
            "speedup_vs_naive": naive["median_ms"] / ours["median_ms"],
            "fraction_of_triad": ours["gb_per_s"] / ref["gb_per_s"],
            "triad_reference": ref_key,
            "fraction_of_add_1_thread": ours["gb_per_s"] / streams["add_1"]["gb_per_s"],
        }
        if ours_1 is not None:
            r["adam_1_thread"] = ours_1
            r["speedup_vs_naive_1_thread"] = naive["median_ms"] / ours_1["median_ms"]
            r["fraction_of_triad_1_thread"] = ours_1["gb_per_s"] / ref1["gb_per_s"]
        layouts[label] = r
    gemm = bench_gemm(2048, max(3, args.repeats // 2), rng)
    met = {label: {"speedup": r["speedup_vs_naive"] >= TARGET_SPEEDUP,
                   "bandwidth": r["fraction_of_triad"] >= TARGET_TRIAD_FRACTION}
           for label, r in layouts.items()}
    all_met = all(all(m.values()) for m in met.values())

    env = info["env"]
    print(f"Adam.update benchmark: {args.n:,} float32 parameters, median of {args.repeats} "
          f"after {args.warmup} warm-up runs (best in brackets)")
    print(f"machine: {info['machine']} {info['processor'] or ''}, os.cpu_count() = "
          f"{info['cpu_count']}, affinity = {info['cpu_affinity']} cores; numpy {info['numpy']}, "
          f"BLAS {info['blas'].get('name', '?')} {info['blas'].get('version', '')}")
    print(f"threads: Adam.update uses {threads if threads is not None else 1} "
          f"(adamlab.optim.get_num_threads; ADAMLAB_NUM_THREADS="
          f"{os.environ.get('ADAMLAB_NUM_THREADS', 'unset')}); "
          + ", ".join(f"{k}={env[k] if env[k] is not None else 'unset'}" for k in ENV_VARS[:3])
          + " (BLAS threads affect only the GEMM)")
    print(f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE'] if env['OPENBLAS_CORETYPE'] else 'unset'}")
    load = info["load_average_1min"]
    if load is not None:
        busy = info["cpu_count"] and load > 0.5 * info["cpu_count"]
        print(f"1-minute load average at start: {load:.2f}"
              + ("  WARNING: other processes compete for the cores; figures are unreliable"
                 if busy else ""))
    if "openblas configuration" in info["blas"]:
        print(f"openblas configuration: {info['blas']['openblas configuration']}")
    print()
    print(f"{'reference (bytes: 3 arrays x 4 B)':40s} {'ms':>9s} {'GB/s':>14s}")
    names = {"plain": "triad a = b + s*c, 2 passes", "blocked": "triad, 2 passes per block"}
    for key, r in streams.items():
        kind, nthreads = key.rsplit("_", 1)
        title = "add a = b + c, 1 pass" if kind == "add" else names[kind.split("_")[1]]
        mark = " <- reference" if key in (ref_key, ref1_key) else ""
        print(f"{title + f' ({nthreads} thr)':40s} {r['median_ms']:9.2f} "
              f"{r['gb_per_s']:6.2f} [{r['gb_per_s_best']:5.2f}]{mark}")
    print(f"{'GEMM float32 2048^3 (BLAS threads)':40s} {gemm['median_ms']:9.2f} "
          f"{gemm['gflop_per_s']:6.1f} GFLOP/s [{gemm['gflop_per_s_best']:.1f}]")
    print()
    print(f"{'layout':16s} {'':24s} {'ms/step':>9s} {'GB/s (7x4 B)':>14s} "
          f"{'page faults/step':>17s}")
    for label, r in layouts.items():
        rows = [(f"Adam.update ({threads or 1} thr)", r["adam"])]
        if "adam_1_thread" in r:
            rows.append(("Adam.update (1 thr)", r["adam_1_thread"]))
        rows.append(("naive Algorithm 1 (1 thr)", r["naive"]))
        for name, s_ in rows:
            print(f"{label:16s} {name:24s} {s_['median_ms']:9.2f} "
                  f"{s_['gb_per_s']:6.2f} [{s_['gb_per_s_best']:5.2f}] "
                  f"{s_['minor_page_faults_per_run']:17.0f}")
        print(f"{'':16s} speed-up vs naive {r['speedup_vs_naive']:5.2f}x "
              f"(target >= {TARGET_SPEEDUP}: {'met' if met[label]['speedup'] else 'MISSED'}); "
              f"fraction of triad ({threads or 1} thr) {r['fraction_of_triad']:.2f} "
              f"(target >= {TARGET_TRIAD_FRACTION}: "
              f"{'met' if met[label]['bandwidth'] else 'MISSED'})")
        if "adam_1_thread" in r:
            print(f"{'':16s} one thread: speed-up vs naive {r['speedup_vs_naive_1_thread']:5.2f}x, "
                  f"fraction of 1-thread triad {r['fraction_of_triad_1_thread']:.2f}")
    print()
    print("all targets met" if all_met else "TARGETS MISSED")

    if args.json:
        record = {"n_params": args.n, "repeats": args.repeats, "warmup": args.warmup,
                  "machine": info, "streams": streams, "gemm_2048_float32": gemm,
                  "layouts": layouts, "targets": {"speedup_vs_naive": TARGET_SPEEDUP,
                                                  "fraction_of_triad": TARGET_TRIAD_FRACTION},
                  "met": met, "all_met": all_met}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, sort_keys=True)
            f.write("\n")
    return 1 if (args.check and not all_met) else 0


if __name__ == "__main__":
    sys.exit(main())
