"""The book executes only notebooks committed without outputs (book/_ext/execute_only_empty.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import yaml

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("execute_only_empty",
                                               REPO / "book" / "_ext" / "execute_only_empty.py")
ext = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ext)


def _notebook(path: Path, outputs: list[list]) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# t"}]
    cells += [{"cell_type": "code", "metadata": {}, "source": "1", "execution_count": None,
               "outputs": out} for out in outputs]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_only_notebooks_without_any_output_are_left_to_execute(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    printed = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    _notebook(nbs / "a_committed.ipynb", [[], printed])  # an imports cell without output is normal
    _notebook(nbs / "b_fresh.ipynb", [[], []])
    config = SimpleNamespace(nb_execution_excludepatterns=["other/*.ipynb"])
    ext._exclude_notebooks_with_outputs(SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.nb_execution_excludepatterns == ["other/*.ipynb", "notebooks/a_committed.ipynb"]


def test_every_committed_notebook_is_rendered_from_its_outputs():
    # Each notebook in the repository carries outputs, so the build renders what nbval checks.
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert ext.has_outputs(nb), f"{nb.name} has no outputs: run scripts/refresh_notebooks.py"


def test_config_loads_the_extension_in_auto_mode():
    cfg = yaml.safe_load((REPO / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "auto"
    assert cfg["sphinx"]["local_extensions"]["execute_only_empty"] == "book/_ext"
    assert "execute_only_empty" in cfg["sphinx"]["config"]["extensions"]
