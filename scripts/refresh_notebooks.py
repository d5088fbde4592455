"""Re-execute notebooks in place and store their new outputs (what nbval then compares).

Usage (from the repository root)::

    .venv/bin/python scripts/refresh_notebooks.py               # every notebook in notebooks/
    .venv/bin/python scripts/refresh_notebooks.py notebooks/02_algorithm.ipynb

Each notebook runs top to bottom in a fresh ``python3`` kernel with ``notebooks/`` as its working
directory, as nbval and the book build run it. Unlike ``jupyter execute --inplace``, no execution
timestamps are written into cell metadata, so a refresh changes only what the reader sees. A
notebook whose execution fails is left untouched on disk and the script exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)  # only a fully executed notebook replaces the stored one


def main(argv: list[str]) -> int:
    if os.environ.get("ADAMLAB_PERTURB", "").strip() not in ("", "0"):
        print("refusing to store outputs made in the perturbation mode "
              f"(ADAMLAB_PERTURB={os.environ['ADAMLAB_PERTURB']}): unset it and run again",
              file=sys.stderr)
        return 2
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    failed = []
    for path in paths:
        print(f"executing {path} ...", flush=True)
        try:
            refresh(path)
        except CellExecutionError as err:
            print(f"FAILED {path}: {str(err).splitlines()[0] if str(err) else err}", file=sys.stderr)
            failed.append(path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
