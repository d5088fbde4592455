"""How the book prints numbers that every machine must reproduce.

A compared notebook output (one that nbval checks) may show only what any IEEE-754 machine, any
BLAS and any thread count prints alike. Round-off-level quantities, such as the error of an
identity, therefore appear as bounds: ``below(err, 1e-12)`` prints ``below 1e-12``. The bound is
chosen with room to spare over the error, so that another CPU's digits stay under it, and the
notebook asserts the same bound next to the print. Other results are rounded (``sig``) to a
precision that their numerical error cannot reach. ``CONTRIBUTING.md`` ("Writing a chapter") states
the whole policy.

Tables that a notebook displays go through :func:`md_table`, which escapes what a cell says, so
that a cell reading ``|r| ≤ 5 %`` stays one cell instead of becoming three.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["Markup", "below", "captioned", "escape_md", "md_table", "sig"]


def _bound_text(bound: float) -> str:
    """The bound as a reader writes it: ``1e-12``, ``2.5e-9``, ``7e-16``, ``0.001``."""
    exp = int(f"{bound:e}".split("e")[1])
    if -4 <= exp <= 4:
        return f"{bound:g}"
    mantissa = f"{bound / 10.0 ** exp:.6f}".rstrip("0").rstrip(".")
    if mantissa == "10":  # 9.9999996e-13 read as 10e-13
        mantissa, exp = "1", exp + 1
    return f"{mantissa}e{exp}"


def below(value, bound: float) -> str:
    """``"below 1e-12"`` when every entry of ``|value|`` is below ``bound``.

    ``value`` may be a number or an array (its largest magnitude counts). When the bound does not
    hold, the text says so and shows the value (``"3.1e-11, NOT below 1e-12"``), so that the
    compared output changes and the reader sees why; the notebook's ``assert`` beside the print
    carries the verification.
    """
    bound = float(bound)
    if not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be a finite positive number, got {bound!r}")
    worst = float(np.max(np.abs(np.asarray(value, dtype=np.float64)))) if np.size(value) else 0.0
    if worst < bound:
        return f"below {_bound_text(bound)}"
    return f"{worst:.1e}, NOT below {_bound_text(bound)}"


def sig(value: float, digits: int = 3) -> str:
    """``value`` rounded to ``digits`` significant digits, in plain or scientific notation.

    Use it for results whose numerical error is far below the last digit shown (for example a
    loss after training, to 3 digits); a round-off-level quantity is printed with :func:`below`.
    """
    if not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be a positive integer, got {digits!r}")
    return f"{float(value):.{digits}g}"


#: The characters that MyST Markdown reads as markup inside a table cell's text.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|$~#])")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)((?:\\\\)*)\|")


class Markup(str):
    """Cell text that is MyST markup on purpose (math, emphasis, links, code), kept as written.

    Only its pipes are escaped, so that ``Markup("$|\\Delta_t| \\le \\alpha$")`` stays one cell
    (the table reader removes the backslash before the math is read).
    """


def escape_md(text) -> str:
    """``text`` with every character that Markdown would read as markup backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def _cell(value) -> str:
    if isinstance(value, Markup):
        text = _UNESCAPED_PIPE.sub(lambda m: m.group(1) + "\\|", str(value))
    else:
        text = escape_md(value)
    if "\n" in text:
        raise ValueError(f"a table cell must be one line, got {str(value)!r}")
    return text


def md_table(header, rows) -> str:
    """A Markdown table: ``header`` (cell texts) above ``rows`` (sequences of cells).

    Plain cells are escaped (:func:`escape_md`) and show exactly their text; :class:`Markup` cells
    keep their markup. Every row must have as many cells as the header.
    """
    header = list(header)
    if not header:
        raise ValueError("a table needs at least one column")
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, the header has {len(header)}: {row!r}")
        lines.append("| " + " | ".join(map(_cell, row)) + " |")
    return "\n".join(lines)


def captioned(table: str, caption: str, name: str) -> str:
    """``table`` (Markdown) as a numbered table with a caption, in MyST's ``{table}`` directive.

    The book numbers it ("Table 6.1.2"), and ``{numref}`name``` refers to it. ``caption`` is one
    line of MyST (math and emphasis allowed); ``name`` a label such as ``"tab-061-verdicts"``.
    """
    if "\n" in caption or not caption.strip():
        raise ValueError(f"a caption is one non-empty line, got {caption!r}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueError(f"a table name is lower-case letters, digits and '-', got {name!r}")
    return f":::{{table}} {caption}\n:name: {name}\n\n{table}\n:::"
