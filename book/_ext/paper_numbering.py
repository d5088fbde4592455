"""Sphinx extension: number the book's chapters as the paper numbers its sections.

A chapter's file name starts with its paper section (``02_algorithm`` is §2, ``02_1_update_rule``
§2.1, ``06_1_logistic_regression`` §6.1). Sphinx numbers a numbered toctree in reading order, and
numbers the headings inside each page as well, so §2.1 nested under §2 would collide with §2's own
second-level headings. After Sphinx has numbered the toctree, this extension gives every such page
its paper number, removes the numbers of the headings inside it, and renumbers the figures (figure
``k`` of §6.1 becomes "6.1.k"). Pages whose names carry no section number are left as Sphinx made
them.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.environment.collectors.toctree import TocTreeCollector

_SECTION = re.compile(r"^(\d{2})((?:_\d+)*)_[a-z]")


def paper_number(docname: str) -> tuple[int, ...] | None:
    """``notebooks/06_1_logistic_regression`` -> (6, 1); None for a name without a number."""
    m = _SECTION.match(docname.rsplit("/", 1)[-1])
    if m is None:
        return None
    return (int(m.group(1)),) + tuple(int(p) for p in m.group(2).split("_") if p)


def _renumber(app, env) -> list[str]:
    changed = []
    for docname, toc in env.tocs.items():
        number = paper_number(docname)
        if number is None or docname not in env.toc_secnumbers:
            continue  # not a chapter, or outside every numbered toctree
        secnums = {}
        for ref in toc.findall(nodes.reference):
            anchor = ref.get("anchorname")
            if anchor is None:
                continue
            secnums[anchor] = number if anchor == "" else None
            ref["secnumber"] = secnums[anchor]
        if docname in env.titles:  # the title that previous/next links show
            env.titles[docname]["secnumber"] = number
        if secnums != env.toc_secnumbers[docname]:
            env.toc_secnumbers[docname] = secnums
            changed.append(docname)
    if changed:  # the figure numbers are derived from the section numbers
        changed += TocTreeCollector().assign_figure_numbers(env)
    return changed


def setup(app):
    # after Sphinx's own toctree collector (priority 500) has assigned its numbers
    app.connect("env-get-updated", _renumber, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
