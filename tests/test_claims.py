"""The claims registry: ids, sections and the chapters it points to."""

import re
from pathlib import Path

import pytest

from adamlab import claims

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_ids_unique_and_contiguous():
    ids = [c.id for c in claims.CLAIMS]
    assert len(ids) == len(set(ids)), f"duplicate claim ids: {ids}"
    assert all(re.fullmatch(r"C[1-9][0-9]*", i) for i in ids), ids
    assert [c.number for c in claims.CLAIMS] == list(range(1, len(ids) + 1))


def test_fields_non_empty():
    for c in claims.CLAIMS:
        assert c.statement.strip(), c.id
        assert c.section.strip().startswith("§"), (c.id, c.section)
        assert c.chapters, c.id
        assert all(ch.strip() for ch in c.chapters), c.id


def test_planned_is_exclusive():
    # A claim is either planned or tested by named chapters, never both.
    for c in claims.CLAIMS:
        if claims.PLANNED in c.chapters:
            assert c.chapters == (claims.PLANNED,), c.id


@pytest.mark.parametrize("chapter", sorted(set(claims.claims_by_chapter()) - {claims.PLANNED}))
def test_named_chapter_exists(chapter):
    path = NOTEBOOKS / f"{chapter}.ipynb"
    assert path.is_file(), f"claims.py names chapter {chapter!r} but {path} does not exist"


def test_lookup_and_unknown_id():
    assert claims.claim("C23").section == "§2"
    with pytest.raises(KeyError, match="C99"):
        claims.claim("C99")


def test_table_has_one_row_per_claim():
    lines = claims.claims_table().splitlines()
    assert len(lines) == 2 + len(claims.CLAIMS)
    assert all(line.startswith(f"| {c.id} |") for line, c in zip(lines[2:], claims.CLAIMS))


def test_claims_table_has_four_cells_per_row():
    # C21's "|Δ_t| ≤ α" once split its row into six cells; pipes inside a cell must be escaped.
    lines = claims.claims_table().splitlines()
    assert len(lines) == 2 + len(claims.CLAIMS)
    for line in lines:
        cells = re.split(r"(?<!\\)\|", line)[1:-1]
        assert len(cells) == 4, line
    assert "\\|Δ_t\\|" in claims.claims_table()


def test_linked_table_points_every_chapter_at_its_notebook():
    table = claims.claims_table(links=True)
    for c in claims.CLAIMS:
        row = next(line for line in table.splitlines() if line.startswith(f"| {c.id} |"))
        if c.planned:
            assert row.endswith("| planned |"), row
        for chapter in () if c.planned else c.chapters:
            assert f"{{doc}}`{chapter} <{chapter}>`" in row, row
