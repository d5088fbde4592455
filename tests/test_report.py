"""adamlab.report: the printed forms of the output policy."""

import numpy as np
import pytest

from adamlab.report import below, sig


@pytest.mark.parametrize("bound, text", [(1e-12, "1e-12"), (1e-7, "1e-7"), (7e-16, "7e-16"),
                                          (2.5e-9, "2.5e-9"), (3e-10, "3e-10"), (1e-20, "1e-20"),
                                          (0.5, "0.5"), (5e-4, "0.0005"), (1e5, "1e5")])
def test_below_prints_the_bound_as_written(bound, text):
    assert below(0.0, bound) == f"below {text}"


def test_below_takes_the_largest_magnitude_of_an_array():
    assert below(np.array([1e-13, -9e-13]), 1e-12) == "below 1e-12"
    assert below(np.array([1e-13, -3e-12]), 1e-12) == "3.0e-12, NOT below 1e-12"
    assert below([], 1e-12) == "below 1e-12"


def test_below_fails_visibly_on_the_bound_itself_and_on_nan():
    assert below(1e-12, 1e-12) == "1.0e-12, NOT below 1e-12"
    assert "NOT below" in below(float("nan"), 1e-12)


@pytest.mark.parametrize("bad", [0.0, -1e-12, float("inf"), float("nan")])
def test_below_rejects_a_bound_that_is_not_finite_and_positive(bad):
    with pytest.raises(ValueError, match="bound must be a finite positive number"):
        below(0.0, bad)


def test_sig_rounds_to_significant_digits():
    assert sig(0.2641234, 3) == "0.264"
    assert sig(12345.6, 2) == "1.2e+04"
    with pytest.raises(ValueError, match="digits must be a positive integer"):
        sig(1.0, 0)


# ----------------------------------------------------------------------------- md_table


def _render_cells(markdown: str) -> list[list[str]]:
    """The table as MyST (with the book's dollarmath) renders it: the text of each cell, by row."""
    from html.parser import HTMLParser

    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    html = create_md_parser(MdParserConfig(enable_extensions={"dollarmath", "amsmath"}),
                            RendererHTML).render(markdown)

    class Cells(HTMLParser):
        rows: list[list[str]] = []
        cell = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.rows[-1].append(self.cell)
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    p = Cells()
    p.rows = []
    p.feed(html)
    return p.rows


def test_md_table_cells_show_exactly_their_text():
    from adamlab.report import md_table

    tricky = ["|r| ≤ 5 %", r"C:\new\table", "costs $3 and $4", "a*b*c_d_", "`x` <y> [z](w)",
              "~~no~~ #1", "back\\|slash"]
    md = md_table(["claim", "verdict"], [[t, "verified"] for t in tricky])
    rows = _render_cells(md)
    assert rows[0] == ["claim", "verdict"]
    assert [r[0] for r in rows[1:]] == tricky
    assert all(r[1] == "verified" for r in rows[1:])


def test_md_table_markup_keeps_math_and_emphasis_in_one_cell():
    from adamlab.report import Markup, md_table

    md = md_table(["claim", "verdict"],
                  [[Markup(r"$|\Delta_t| \le \alpha$ for **all** t"), Markup("*verified*")]])
    assert r"$\|\Delta_t\| \le \alpha$" in md and "**all**" in md
    rows = _render_cells(md)
    assert len(rows[1]) == 2
    assert rows[1][0] == r"|\Delta_t| \le \alpha for all t"  # math kept, pipes inside it intact
    assert rows[1][1] == "verified"


def test_md_table_refuses_ragged_rows_and_multiline_cells():
    from adamlab.report import md_table

    with pytest.raises(ValueError, match="row 1 has 3 cells, the header has 2"):
        md_table(["a", "b"], [["1", "2"], ["1", "2", "3"]])
    with pytest.raises(ValueError, match="one line"):
        md_table(["a"], [["two\nlines"]])
    with pytest.raises(ValueError, match="at least one column"):
        md_table([], [])


def test_captioned_wraps_a_table_in_a_named_directive():
    from adamlab.report import captioned, md_table

    out = captioned(md_table(["a"], [["1"]]), "Verdicts of $\\S 3$.", "tab-03-verdicts")
    lines = out.splitlines()
    assert lines[0] == ":::{table} Verdicts of $\\S 3$." and lines[1] == ":name: tab-03-verdicts"
    assert lines[3:5] == ["| a |", "|---|"] and lines[-1] == ":::"
    with pytest.raises(ValueError, match="one non-empty line"):
        captioned("| a |", "two\nlines", "tab-x")
    with pytest.raises(ValueError, match="table name"):
        captioned("| a |", "ok", "Tab X")
