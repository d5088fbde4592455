"""Where and how a result was made: package versions, threads, BLAS, CPU, git commit.

:func:`machine_info` runs where the training ran (a worker process or a Dask worker);
:func:`code_info` where the results are written (the git commit of the checkout).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "ADAMLAB_NUM_THREADS")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def openblas_info() -> dict:
    """OpenBLAS's own thread count and core name, via ctypes into NumPy's bundled copy."""
    import ctypes
    import glob

    import numpy as np

    here = os.path.dirname(np.__file__)
    for path in sorted(glob.glob(os.path.join(here, os.pardir, "numpy.libs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        out = {"library": os.path.basename(path)}
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            try:
                threads = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                corename = getattr(lib, f"{prefix}_get_corename{suffix}")
            except AttributeError:
                continue
            corename.restype = ctypes.c_char_p
            out["threads"] = int(threads())
            out["corename"] = corename().decode()
            return out
        return out
    return {}


def machine_info() -> dict:
    import numpy as np
    import scipy

    from .. import __version__
    from ..nn import perturbation
    from ..optim import get_num_threads

    coretype = os.environ.get("OPENBLAS_CORETYPE")
    return {
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "system": platform.system(), "python": platform.python_version(),
        "packages": {"numpy": np.__version__, "scipy": scipy.__version__, "adamlab": __version__},
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
        "adamlab_optim_threads": get_num_threads(),
        "openblas": openblas_info(),
        "OPENBLAS_CORETYPE": coretype if coretype is not None else "unset",
        "pid": os.getpid(),
        # CI's perturbation pass (adamlab.nn.set_perturbation): a result made under it is not
        # the normal run's
        "perturbation": None if perturbation() is None else list(perturbation()),
    }


def repo_root() -> Path | None:
    """The checkout this package runs from (``src/adamlab`` inside it), or None when installed."""
    here = Path(__file__).resolve()
    root = here.parents[3]
    if (root / "pyproject.toml").is_file() and (root / "src" / "adamlab").is_dir():
        return root
    return None


def code_info() -> dict:
    root = repo_root()
    out = {"git_commit": None, "git_dirty": None}
    if root is None:
        return out
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                    "src"], capture_output=True, text=True, timeout=10)
            out["git_dirty"] = bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "scipy", "dask", "distributed", "tqdm"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out
