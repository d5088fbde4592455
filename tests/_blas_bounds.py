"""Round-off bounds for comparing BLAS results, whatever the BLAS, its kernels or its threads.

A relative tolerance is wrong for an entry that cancels: ``(A @ B)[i, j]`` may be 1e-4 while its
terms are of order 1, and its round-off is then relative to the terms, not to the result. Two
correct computations of it (a GEMM against a loop, one kernel against another, a batch against
its rows) differ by an amount that depends on the order of summation, which the BLAS chooses at
run time (SIMD width, blocking, threads). What does not depend on it is the classical bound
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1, eq. 3.5): for any
order of summation, with or without fused multiply-adds,

    |fl(Σ_{i≤n} a_i·b_i) − Σ_{i≤n} a_i·b_i| ≤ γ_n · Σ_{i≤n} |a_i·b_i|,   γ_n = n·u/(1 − n·u),

u the unit round-off (2⁻⁵³ in float64, 2⁻²⁴ in float32). Entry by entry that is
γ_n·(|A| @ |B|). Two computations that each obey it differ by at most twice as much.

The bound is honest in both directions: it holds on every machine, and it is many orders of
magnitude below any real error (a wrong transpose, a wrong block, a missing term changes entries
by the size of the terms, about 1/γ_n ≈ 10¹³ times the bound for n ≈ 100 in float64).
"""

from __future__ import annotations

import numpy as np

__all__ = ["unit_roundoff", "gamma", "product_bound", "assert_within"]


def unit_roundoff(dtype=np.float64) -> float:
    """u = ε_mach/2: 2⁻⁵³ for float64, 2⁻²⁴ for float32."""
    return float(np.finfo(dtype).eps) / 2


def gamma(n: int, dtype=np.float64) -> float:
    """γ_n = n·u/(1 − n·u), the relative bound on a sum of n products (Higham 2002, eq. 3.5)."""
    nu = n * unit_roundoff(dtype)
    if not nu < 1:
        raise ValueError(f"gamma({n}) is not defined in {np.dtype(dtype)}: n·u = {nu} >= 1")
    return nu / (1 - nu)


def product_bound(A, B, *, bias=None, dtype=np.float64) -> np.ndarray:
    """Entry-wise bound on the round-off of one computation of ``A @ B`` (``+ bias``) in ``dtype``.

    γ_{k+1}·(|A| @ |B| + |bias|), k the inner dimension (the bias is one more term of the sum).
    The absolute product is computed here in float64; its own round-off (all terms ≥ 0, relative
    γ_k at most) is covered by taking γ two terms longer.
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    k = A.shape[-1]
    mag = np.abs(A) @ np.abs(B)
    if bias is not None:
        mag = mag + np.abs(np.asarray(bias, dtype=np.float64))
    return gamma(k + 3, dtype) * mag


def assert_within(actual, expected, bound, *, computations: int = 2, label: str = "") -> None:
    """Assert |actual − expected| ≤ computations·bound in every entry.

    ``bound`` is the round-off bound of one computation (e.g. :func:`product_bound`);
    ``computations`` = 2 when both sides carry round-off (two BLAS paths), 1 when ``expected`` is
    exact. The message names the worst entry and how far past the bound it is.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape)
    assert actual.shape == expected.shape, f"{label}: shapes {actual.shape} and {expected.shape}"
    err = np.abs(actual - expected)
    limit = computations * bound
    bad = ~(err <= limit)  # also catches nan
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - limit, -np.inf)), err.shape)
        raise AssertionError(
            f"{label}: {int(bad.sum())} of {err.size} entries outside the round-off bound; worst at "
            f"{tuple(int(j) for j in i)}: |{actual[i]!r} - {expected[i]!r}| = {err[i]:.3e} > "
            f"{limit[i]:.3e}"
        )
