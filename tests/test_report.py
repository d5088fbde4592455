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
