"""Reading the §6 figures: "as fast", "faster" and "a large margin", fixed before comparing.

The paper compares its curves by eye. The chapters of §6 compare them by a rule stated in advance.
Let ``c_{A,k}(e)`` be the plotted cost of optimizer A after ``e`` passes for seed ``k`` (same
initialisation and data order for every optimizer), and ``r_k(e) = c_{A,k}(e) / c_{B,k}(e) − 1``
the relative difference of A and B on the same seed. With tolerance τ (default 5 %):

* A is **as fast as** B at ``e`` when ``|r_k(e)| ≤ τ`` on every seed;
* A is **faster** when ``r_k(e) < −τ`` on every seed, and faster **by a large margin** when
  ``r_k(e) < −3τ`` on every seed; **slower** and **slower, large margin** likewise;
* otherwise the comparison is **mixed**.

A claim about two curves, checked at several epochs, is **verified** when its relation holds at
every checked epoch, **holds only approximately** when it holds at the last one (the end of the
paper's run) but not at every one, and is **refuted** otherwise (:func:`verdict`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["TAU", "VERDICTS", "FASTER", "relation", "compare", "verdict", "weakest"]

#: the tolerance of "as fast" (5 %); "a large margin" is 3τ
TAU = 0.05

#: the verdicts from weakest to strongest
VERDICTS = ("refuted", "holds only approximately", "verified")

FASTER = frozenset({"faster", "faster, large margin"})


def _check_tau(tau: float) -> float:
    tau = float(tau)
    if not (np.isfinite(tau) and 0 < tau < 1 / 3):
        raise ValueError(f"tau must be in (0, 1/3) so that 3·tau < 1, got {tau!r}")
    return tau


def relation(a, b, tau: float = TAU) -> str:
    """How curve A stands to curve B at one epoch, paired by seed (see the module docstring).

    ``a`` and ``b`` hold one positive cost per seed, in the same seed order.
    """
    tau = _check_tau(tau)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"relation needs one cost per seed for both curves, got shapes "
                         f"{a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(b > 0)):
        raise ValueError("relation needs finite costs and positive costs of B; a diverged or "
                         "missing seed must be left out (or reported) before comparing")
    r = a / b - 1
    if np.all(r < -3 * tau):
        return "faster, large margin"
    if np.all(r < -tau):
        return "faster"
    if np.all(np.abs(r) <= tau):
        return "as fast"
    if np.all(r > 3 * tau):
        return "slower, large margin"
    return "slower" if np.all(r > tau) else "mixed"


def compare(curve_a, curve_b, epochs, tau: float = TAU) -> list[dict]:
    """Compare two curves at ``epochs``; one row per epoch.

    ``curve_a`` and ``curve_b`` are ``(epochs_logged, rows)``: the epochs at which the cost was
    logged and an array with one row per seed (same seed order for both). A seed that was not run
    as far as an epoch has NaN there, and is left out at that epoch for both curves, so the
    comparison stays paired; ``n`` in each row says how many seeds it rests on.

    Each row: ``epoch``, ``n``, ``gap`` (the difference of the seed means, ``mean(A)/mean(B) − 1``),
    ``lo`` and ``hi`` (the least and largest ``r_k``), ``spread`` (the larger min–max range of the
    two curves, relative to its mean) and ``relation``.
    """
    (ea, ca), (eb, cb) = curve_a, curve_b
    ca, cb = np.atleast_2d(np.asarray(ca, dtype=float)), np.atleast_2d(np.asarray(cb, dtype=float))
    if ca.shape[0] != cb.shape[0]:
        raise ValueError(f"the curves have {ca.shape[0]} and {cb.shape[0]} seeds; compare needs "
                         "the same seeds for both")
    ea, eb = list(ea), list(eb)
    out = []
    for e in epochs:
        if e not in ea or e not in eb:
            raise ValueError(f"epoch {e} was not logged for both curves")
        x, y = ca[:, ea.index(e)], cb[:, eb.index(e)]
        keep = ~(np.isnan(x) | np.isnan(y))
        if not keep.any():
            raise ValueError(f"no seed has both curves at epoch {e}")
        x, y = x[keep], y[keep]
        r = x / y - 1
        spread = max(np.ptp(x) / x.mean(), np.ptp(y) / y.mean())
        out.append({"epoch": e, "n": int(keep.sum()), "gap": x.mean() / y.mean() - 1,
                    "lo": r.min(), "hi": r.max(), "spread": spread,
                    "relation": relation(x, y, tau)})
    return out


def verdict(rows: list[dict], want) -> str:
    """``verified``, ``holds only approximately`` or ``refuted`` for rows of :func:`compare`.

    ``want``: the relations that count as the claim holding at an epoch (for example
    ``{"as fast"}``, or ``{"faster", "faster, large margin"}``).
    """
    if not rows:
        raise ValueError("verdict needs at least one compared epoch")
    ok = [r["relation"] in want for r in rows]
    return VERDICTS[2] if all(ok) else VERDICTS[1] if ok[-1] else VERDICTS[0]


def weakest(*verdicts: str) -> str:
    """The weakest of several verdicts: a claim with several parts holds as its weakest part."""
    for v in verdicts:
        if v not in VERDICTS:
            raise ValueError(f"unknown verdict {v!r}; the verdicts are {', '.join(VERDICTS)}")
    return min(verdicts, key=VERDICTS.index)
