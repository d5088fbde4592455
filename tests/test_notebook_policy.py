"""The output policy of CONTRIBUTING.md ("Writing a chapter"), enforced on the committed notebooks.

nbval compares every code cell's stored output with a fresh one, so a compared output may show only
what every IEEE-754 machine, BLAS and thread count reproduces. These tests read the notebooks as
committed (nothing is executed) and fail on:

- a round-off-level number: scientific notation with a mantissa that has non-zero decimals and a
  magnitude below 1e-8 (``5.4e-16``, ``3.9 × 10^{-9}``). Such a number is printed as a bound with
  :func:`adamlab.report.below` instead. A literal input such as ``ε = 1e-08`` or ``1.0e-08`` has no
  decimals that could change and passes;
- a number with 13 or more significant digits (a float64 repr such as ``0.30000000000000004``):
  its last digits are round-off;
- a figure without a name and caption in the cell's ``mystnb.figure`` metadata (so that the book
  numbers it and the prose can reference it with ``{numref}``);
- a line of code or of compared text output wider than the book's code box.

Cells marked ``# NBVAL_IGNORE_OUTPUT`` or ``# NBVAL_SKIP`` are not compared and are skipped by the
first two checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))

#: Round-off level: below this magnitude a printed mantissa with decimals differs between CPUs.
ROUNDOFF = 1e-8
#: More significant digits than any float64 result computed through BLAS or libm keeps exactly.
MAX_DIGITS = 12
#: Widths (characters) that fit the code box of the book's theme at 1400 px without cutting.
MAX_CODE_LINE = 92
MAX_OUTPUT_LINE = 96

#: (notebook name, cell index) -> reason, for compared outputs that the number checks would flag
#: but that are reproducible. Every entry says why. (Figures and line widths are checked anyway.)
EXEMPT: dict[tuple[str, int], str] = {
    ("02_1_update_rule.ipynb", 40): (
        "relative changes of a step made by eps = 1e-8 at gradient scales 1e1 and 1e2 (1.57e-9, "
        "1.2e-10): real effects of eps, not round-off. Each is 1 - d_eps/d_0 or a difference of "
        "two 300-step sums, accurate to about 1e-16 absolutely, so the 3 (step) and 2 (end point) "
        "significant digits printed are the same on every machine"),
    ("05_related_work.ipynb", 11): (
        "the distance between Adam's (beta1 = 0, alpha/sqrt(t)) and AdaGrad's iterates at "
        "1 - beta2 = 1e-9, 8.0e-9: a real effect proportional to 1 - beta2 (slope 1.00), between "
        "two 1e4-step float64 paths of size O(1) whose round-off is below 1e-12, so its 2 digits "
        "are the same on every machine"),
    ("05_related_work.ipynb", 44): "the verdict table quotes the same 8.0e-9 as cell 11",
}

_SCI = re.compile(r"(?<![\w.])(\d)\.(\d+)[eE]([-−+]?\d+)")
_TIMES = re.compile(r"(?<![\w.])(\d)\.(\d+)\s*(?:\\times|×|\\cdot|·)\s*10\^\{?([-−+]?\d+)\}?")
_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")


def _compared(cell) -> bool:
    src = "".join(cell.get("source", []))
    return "NBVAL_IGNORE_OUTPUT" not in src and "NBVAL_SKIP" not in src


def _texts(cell):
    """Every text the reader sees in a cell's outputs (images excluded)."""
    for out in cell.get("outputs", []):
        if "text" in out:
            yield "".join(out["text"])
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/") or mime in ("application/json",):
                yield "".join(value) if isinstance(value, list) else str(value)


def roundoff_numbers(text: str) -> list[str]:
    """The round-off-level numbers printed in ``text`` (see the module docstring)."""
    found = []
    for pattern in (_SCI, _TIMES):
        for m in pattern.finditer(text):
            lead, decimals, exponent = m.group(1), m.group(2), m.group(3).replace("−", "-")
            if lead == "1" and set(decimals) == {"0"}:
                continue  # 1.0e-08: a literal input such as eps, nothing round-off about it
            if abs(float(f"{lead}.{decimals}e{exponent}")) < ROUNDOFF:
                found.append(m.group(0))
    return found


def overlong_numbers(text: str) -> list[str]:
    """Decimal numbers in ``text`` with more than :data:`MAX_DIGITS` significant digits."""
    found = []
    for m in _DECIMAL.finditer(text):
        digits = m.group(0).replace(".", "").lstrip("0")
        if len(digits) > MAX_DIGITS:
            found.append(m.group(0))
    return found


def _cells(nb_path: Path):
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            yield i, cell


def test_policy_detector_flags_roundoff_and_spares_literals():
    text = "max error 5.4e-16, then 3.9 \\times 10^{-9}"
    assert roundoff_numbers(text) == ["5.4e-16", "3.9 \\times 10^{-9}"]
    assert roundoff_numbers("eps = 1e-08, eps = 1.0e-08, lr 1.5e-03, 2.5e-09 ok?") == ["2.5e-09"]
    assert roundoff_numbers("a distance of 8.0e-09") == ["8.0e-09"]  # two digits claimed
    assert roundoff_numbers("below 1e-12") == []
    assert overlong_numbers("0.30000000000000004 and 0.123 and 1234567.891") == [
        "0.30000000000000004"]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_compared_outputs_show_no_roundoff_digits(nb_path):
    bad = []
    for i, cell in _cells(nb_path):
        if not _compared(cell) or (nb_path.name, i) in EXEMPT:
            continue
        for text in _texts(cell):
            for number in roundoff_numbers(text) + overlong_numbers(text):
                bad.append(f"cell {i}: {number}")
    assert not bad, (f"{nb_path.name}: compared outputs print round-off digits, which another CPU, "
                     f"BLAS or thread count prints differently. Print a bound with "
                     f"adamlab.report.below(err, bound), round to fewer digits, or move the cell's "
                     f"output out of comparison (# NBVAL_IGNORE_OUTPUT) if it is not a result: "
                     + "; ".join(bad))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_is_named_and_captioned(nb_path):
    bad = []
    for i, cell in _cells(nb_path):
        if not any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
            continue
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        if not (figure.get("name") and figure.get("caption")):
            bad.append(f"cell {i}")
    assert not bad, (f"{nb_path.name}: figures without a name and caption in the cell metadata "
                     f'("mystnb": {{"figure": {{"name": ..., "caption": ...}}}}): ' + ", ".join(bad))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_lines_fit_the_code_box(nb_path):
    bad = []
    for i, cell in _cells(nb_path):
        for n, line in enumerate("".join(cell.get("source", [])).splitlines(), 1):
            if len(line) > MAX_CODE_LINE:
                bad.append(f"cell {i} code line {n} ({len(line)} chars)")
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", [])) or "".join(out.get("data", {}).get("text/plain", []))
            if "text/markdown" in out.get("data", {}) or "text/html" in out.get("data", {}):
                continue  # rendered as a table or prose, which wraps
            for n, line in enumerate(text.splitlines(), 1):
                if len(line) > MAX_OUTPUT_LINE:
                    bad.append(f"cell {i} output line {n} ({len(line)} chars)")
    assert not bad, (f"{nb_path.name}: lines wider than the book's code box (code {MAX_CODE_LINE}, "
                     f"output {MAX_OUTPUT_LINE} characters): " + "; ".join(bad))
