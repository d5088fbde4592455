"""The claims of Kingma & Ba (ICLR 2015) that the book puts to a test.

Each claim has a stable id (``C1`` ... ``C23``) that notebooks, tests and the claims ledger refer to,
a statement in our own words, the paper section(s) that make it, and the chapters that test it:
notebook names (without ``.ipynb``) under ``notebooks/``, or ``("planned",)`` while no chapter does yet.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Claim", "CLAIMS", "PLANNED", "claim", "claims_by_chapter", "claims_table"]

PLANNED = "planned"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: ``id`` (``"C<n>"``), ``statement``, ``section``, ``chapters``."""

    id: str
    statement: str
    section: str
    chapters: tuple[str, ...] = (PLANNED,)

    @property
    def number(self) -> int:
        """The integer n of the id ``C<n>``."""
        return int(self.id[1:])

    @property
    def planned(self) -> bool:
        """True while no chapter tests this claim yet."""
        return self.chapters == (PLANNED,)


_ALGO = ("02_algorithm",)
_RULE = ("02_1_update_rule",)
_BIAS = ("03_bias_correction",)
_CONV = ("04_convergence",)
_RELATED = ("05_related_work",)
_EXT = ("07_extensions",)
_LOGREG = ("06_1_logistic_regression",)
_MLP = ("06_2_multilayer_networks",)
_VAE = ("06_4_vae_bias_correction",)

CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "Adam is simple to implement.", "§1", _ALGO),
    Claim("C2", "Adam is computationally efficient.", "§1", _ALGO),
    Claim("C3", "Adam needs little memory.", "§1", _ALGO),
    Claim("C4", "Adam's updates do not change when the gradients are rescaled by a positive "
          "diagonal matrix.", "§1, §2.1", _RULE),
    Claim("C5", "Adam suits problems that are large in data and/or in parameters.", "§1"),
    Claim("C6", "Adam is appropriate for non-stationary objectives.", "§1"),
    Claim("C7", "Adam copes with very noisy and/or sparse gradients.", "§1"),
    Claim("C8", "Adam's hyper-parameters are intuitive to interpret and need little tuning.", "§1"),
    Claim("C9", "The size of each step is approximately bounded by the step size α.", "§1, §2.1", _RULE),
    Claim("C10", "Steps shrink automatically as the signal-to-noise ratio m̂/√v̂ falls near an "
          "optimum (step-size annealing).", "§1, §2.1", _RULE),
    Claim("C11", "Dividing by (1 − β^t) removes the bias that initialising the moment estimates "
          "at zero introduces.", "§3", _BIAS),
    Claim("C12", "Without bias correction, β2 close to 1 makes the first steps too large and "
          "training unstable.", "§3, §6.4", _BIAS + _VAE),
    Claim("C13", "Under the assumptions of Theorem 4.1, the regret grows as O(√T), so "
          "R(T)/T → 0.", "§4, Thm 4.1, Cor 4.2", _CONV),
    Claim("C14", "Adam combines AdaGrad's strength on sparse gradients with RMSProp's on "
          "non-stationary objectives.", "§1, §5", _RELATED),
    Claim("C15", "AdaGrad is a limit case of Adam (β1 = 0, β2 → 1, α_t = α/√t, with bias "
          "correction).", "§5", _RELATED),
    Claim("C16", "MNIST logistic regression: Adam converges about as fast as SGD with Nesterov "
          "momentum, and both faster than AdaGrad.", "§6.1", _LOGREG),
    Claim("C17", "IMDB bag-of-words logistic regression: Adam is as fast as AdaGrad, and both are "
          "far better than SGD with Nesterov momentum.", "§6.1", _LOGREG),
    Claim("C18", "MNIST multilayer network: Adam converges best among the optimizers "
          "compared.", "§6.2", _MLP),
    Claim("C19", "CIFAR-10 CNN: Adam and SGD eventually converge much faster than AdaGrad; v̂ "
          "shrinks until ε dominates it.", "§6.3"),
    Claim("C20", "Adam (with bias correction) is equal to or better than RMSProp with momentum "
          "(without it) for every setting tried.", "§6.4", _VAE),
    Claim("C21", "AdaMax is numerically stable and its steps satisfy |Δ_t| ≤ α.", "§7.1", _EXT),
    Claim("C22", "Temporal averaging of the parameters often generalises better than the last "
          "iterate.", "§7.2", _EXT),
    Claim("C23", "The reordered, more efficient form of §2 computes the same iterates as "
          "Algorithm 1.", "§2", _ALGO),
)

_BY_ID = {c.id: c for c in CLAIMS}


def claim(claim_id: str) -> Claim:
    """Return the claim with id ``claim_id`` (e.g. ``"C9"``); KeyError naming it if unknown."""
    try:
        return _BY_ID[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim id {claim_id!r}; ids are C1..C{len(CLAIMS)}") from None


def claims_by_chapter() -> dict[str, list[str]]:
    """Map each chapter (and ``"planned"``) to the ids of the claims it tests, in id order."""
    out: dict[str, list[str]] = {}
    for c in CLAIMS:
        for chapter in c.chapters:
            out.setdefault(chapter, []).append(c.id)
    return out


def _cell(text: str) -> str:
    """Escape the pipes of ``|Δ_t|`` so that they do not split a Markdown table cell."""
    return text.replace("|", "\\|")


def claims_table(links: bool = False) -> str:
    """The claims as a Markdown table: id, claim, paper section, chapter(s).

    With ``links=True`` each chapter is a MyST ``{doc}`` link to its notebook, for a table rendered
    by the book from a notebook in ``notebooks/``; otherwise chapters are shown as code.
    """
    rows = ["| id | claim | paper | chapter |", "|---|---|---|---|"]
    for c in CLAIMS:
        if c.planned:
            chapters = "planned"
        elif links:
            chapters = ", ".join(f"{{doc}}`{ch} <{ch}>`" for ch in c.chapters)
        else:
            chapters = ", ".join(f"`{ch}`" for ch in c.chapters)
        cells = (c.id, c.statement, c.section, chapters)
        rows.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(rows)
