"""The rule by which the §6 chapters read their curves (adamlab.experiments.compare)."""

import numpy as np
import pytest

from adamlab.experiments.compare import TAU, compare, relation, verdict, weakest


@pytest.mark.parametrize("ratios, expected", [
    ((0.80, 0.84), "faster, large margin"),       # r < -15 % on every seed
    ((0.90, 0.94), "faster"),                     # -15 % <= r < -5 %
    ((0.80, 0.94), "faster"),                     # one seed large, one not: faster only
    ((0.96, 1.04), "as fast"),                    # |r| <= 5 %
    ((1.06, 1.10), "slower"),
    ((1.20, 1.30), "slower, large margin"),
    ((0.90, 1.00), "mixed"),                      # faster on one seed, level on the other
    ((0.90, 1.10), "mixed"),
])
def test_relation_reads_every_seed(ratios, expected):
    b = np.array([0.3, 0.02])
    assert relation(b * np.array(ratios), b) == expected


def test_relation_is_antisymmetric_for_clear_cases():
    a, b = np.array([0.5, 0.6]), np.array([1.0, 1.1])
    assert relation(a, b) == "faster, large margin"
    assert relation(b, a) == "slower, large margin"


def test_relation_tolerance_is_a_parameter():
    a, b = np.array([0.92]), np.array([1.0])
    assert relation(a, b) == "faster"
    assert relation(a, b, tau=0.1) == "as fast"
    assert TAU == 0.05


@pytest.mark.parametrize("a, b, match", [
    ([1.0, np.nan], [1.0, 1.0], "finite"),
    ([1.0], [0.0], "positive"),
    ([1.0, 2.0], [1.0], "one cost per seed"),
    ([], [], "one cost per seed"),
])
def test_relation_refuses_what_it_cannot_read(a, b, match):
    with pytest.raises(ValueError, match=match):
        relation(a, b)


@pytest.mark.parametrize("tau", [0.0, -0.1, 0.34, np.nan])
def test_bad_tolerance(tau):
    with pytest.raises(ValueError, match="tau"):
        relation([1.0], [1.0], tau=tau)


def test_compare_rows_pair_seeds_and_skip_unrun_epochs():
    epochs = [1, 2, 3]
    a = np.array([[0.5, 0.40, 0.30],
                  [0.6, 0.45, np.nan]])       # seed 1 stopped after epoch 2
    b = np.array([[1.0, 0.50, 0.31],
                  [1.0, 0.50, np.nan]])
    rows = compare((epochs, a), (epochs, b), (1, 2, 3))
    assert [r["n"] for r in rows] == [2, 2, 1]
    assert rows[0]["relation"] == "faster, large margin"
    assert rows[0]["gap"] == pytest.approx(0.55 / 1.0 - 1)
    assert (rows[0]["lo"], rows[0]["hi"]) == pytest.approx((-0.5, -0.4))
    assert rows[0]["spread"] == pytest.approx(0.1 / 0.55)
    assert rows[1]["relation"] == "faster"          # -20 % and -10 %
    assert rows[2]["relation"] == "as fast"         # one seed: 0.30 / 0.31 - 1 = -3.2 %


def test_compare_errors_name_the_problem():
    e, a = [1, 2], np.ones((2, 2))
    with pytest.raises(ValueError, match="epoch 5"):
        compare((e, a), (e, a), (5,))
    with pytest.raises(ValueError, match="same seeds"):
        compare((e, a), (e, np.ones((3, 2))), (1,))
    with pytest.raises(ValueError, match="no seed"):
        compare((e, np.full((2, 2), np.nan)), (e, a), (1,))


def test_verdict_rule():
    rows = lambda *rels: [{"relation": r} for r in rels]
    want = {"faster", "faster, large margin"}
    assert verdict(rows("faster", "faster, large margin"), want) == "verified"
    assert verdict(rows("mixed", "faster"), want) == "holds only approximately"
    assert verdict(rows("faster", "as fast"), want) == "refuted"
    with pytest.raises(ValueError, match="at least one"):
        verdict([], want)


def test_weakest():
    assert weakest("verified", "holds only approximately") == "holds only approximately"
    assert weakest("verified", "refuted", "verified") == "refuted"
    assert weakest("verified") == "verified"
    with pytest.raises(ValueError, match="unknown verdict"):
        weakest("verified", "true")
