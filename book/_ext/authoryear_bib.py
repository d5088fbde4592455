"""A pybtex style whose bibliography labels are author-year, like the citations in the text.

sphinxcontrib-bibtex's ``author_year`` reference style cites as "[Kingma and Ba, 2015]", but the
stock pybtex styles label the list "[1]", "[2]" (``plain``) or "[KB15]" (``alpha``). This style
labels each entry "Kingma and Ba, 2015" (three or more authors: "Reddi et al., 2018"; a letter is
appended where two entries would share a label), sorted by author and year as ``plain`` sorts, so a
reader finds a citation of the text under the same words in the list.
"""

from __future__ import annotations

import codecs
from collections import Counter

import latexcodec  # noqa: F401  (registers the "ulatex" codec; a dependency of pybtex)

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _last(person) -> str:
    """The surname as a reader sees it: LaTeX accents decoded (D\\'efossez gives Défossez)."""
    name = " ".join(person.prelast_names + person.last_names)
    return codecs.decode(name, "ulatex").replace("{", "").replace("}", "")


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        raw = []
        for entry in sorted_entries:
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            if not people:
                who = entry.fields.get("key", entry.key)
            elif len(people) == 1:
                who = _last(people[0])
            elif len(people) == 2:
                who = f"{_last(people[0])} and {_last(people[1])}"
            else:
                who = f"{_last(people[0])} et al."
            raw.append(f"{who}, {entry.fields.get('year', 'n.d.')}")
        counts, seen = Counter(raw), Counter()
        for label in raw:
            if counts[label] > 1:
                seen[label] += 1
                label = f"{label}{'abcdefghijklmnopqrstuvwxyz'[seen[label] - 1]}"
            yield label


class AuthorYearStyle(PlainStyle):
    default_label_style = "authoryear"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
