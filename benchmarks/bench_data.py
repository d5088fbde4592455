"""Load times of the datasets from the data directory's caches (not a test).

Usage: ADAMLAB_DATA=<dir> python benchmarks/bench_data.py [--repeat 3] [--whiten]

The first call of each loader (which may build a cache: IMDB bag-of-words, ZCA fit) is timed
separately as "first"; "cached" is the median of the following calls. Targets from the issue:
full MNIST under 2 s and IMDB BoW under 3 s from the cache. To compare machines, each time is
also given as a ratio to a same-run machine figure: copying 256 MB in memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from adamlab import data
from adamlab.data import cifar10, imdb


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def machine_figure(repeat: int) -> float:
    """Seconds to copy 256 MB in memory (median)."""
    a = np.ones(64 * 2**20, dtype=np.float32)
    b = np.empty_like(a)
    return statistics.median(timed(lambda: np.copyto(b, a))[0] for _ in range(repeat + 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--whiten", action="store_true", help="also time CIFAR-10 with ZCA whitening")
    ap.add_argument("--tokeniser", action="store_true",
                    help="also time the IMDB tokeniser on the 25,000 training reviews (no cache)")
    args = ap.parse_args()

    print(f"data directory        {data.data_dir()}")
    print(f"python / numpy        {platform.python_version()} / {np.__version__}")
    print(f"cpu count             {os.cpu_count()}")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE"):
        print(f"{var:<22}{os.environ.get(var, '(unset)')}")
    ref = machine_figure(args.repeat)
    print(f"machine figure        {ref * 1e3:.1f} ms to copy 256 MB\n")

    cases = [
        ("MNIST (70,000 x 784 float32)", data.load_mnist, 2.0),
        ("IMDB BoW (2 x 25,000 x 10,000 CSR)", data.load_imdb_bow, 3.0),
        ("CIFAR-10 train (50,000 x 32x32x3 float32)", cifar10.load_cifar10, None),
    ]
    if args.whiten:
        cases.append(("CIFAR-10 train, ZCA-whitened",
                      lambda: cifar10.load_cifar10(whiten_inputs=True), None))
    print(f"{'dataset':<44}{'first s':>9}{'cached s':>10}{'x machine':>11}  target")
    for name, fn, target in cases:
        first, out = timed(fn)
        del out
        times = []
        for _ in range(args.repeat):
            t, out = timed(fn)
            del out
            times.append(t)
        med = statistics.median(times)
        verdict = "" if target is None else f"< {target:.0f} s: {'yes' if med < target else 'NO'}"
        print(f"{name:<44}{first:9.2f}{med:10.2f}{med / ref:11.0f}  {verdict}")
    if args.tokeniser:
        acl = imdb.prepare()
        vocab = imdb.read_vocab(acl / "imdb.vocab")
        read_s, texts = timed(lambda: imdb.read_texts(imdb.list_reviews(acl / "train").paths))
        bow_s, counts = timed(lambda: imdb.bag_of_words(texts, vocab))
        mb = sum(len(t) for t in texts) / 1e6
        print(f"\nIMDB tokeniser, 25,000 train reviews ({mb:.0f} M characters): read {read_s:.2f} s, "
              f"tokenise + count {bow_s:.2f} s ({bow_s / ref:.0f} x machine), "
              f"{counts.sum() / bow_s / 1e6:.1f} M in-vocabulary tokens/s")


if __name__ == "__main__":
    main()
