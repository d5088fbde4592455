"""Sphinx extension: execute only the notebooks committed without any output.

MyST-NB's ``execute_notebooks: auto`` runs every notebook in which *some* code cell lacks output
(an imports cell, say), so committed notebooks would be re-executed by the build and the book would
show fresh outputs instead of the committed ones that nbval checks. This extension adds every
notebook under ``notebooks/`` that carries at least one output to
``nb_execution_excludepatterns``; ``auto`` then executes only notebooks that have none at all.
"""

from __future__ import annotations

import json
from pathlib import Path


def has_outputs(path: Path) -> bool:
    """True when some code cell of the notebook at ``path`` has a stored output."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return any(cell.get("outputs") for cell in cells if cell.get("cell_type") == "code")


def _exclude_notebooks_with_outputs(app, config) -> None:
    root = Path(app.srcdir)
    patterns = list(config.nb_execution_excludepatterns or [])
    for nb in sorted(root.glob("notebooks/*.ipynb")):
        if has_outputs(nb):
            patterns.append(nb.relative_to(root).as_posix())
    config.nb_execution_excludepatterns = patterns


def setup(app):
    app.connect("config-inited", _exclude_notebooks_with_outputs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
