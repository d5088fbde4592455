"""Tests for the perturbation mode of adamlab.nn.init (ADAMLAB_PERTURB, set_perturbation).

Off by default and then bit-identical; on, every initial weight moves by at most REL relative, from
a stream of its own: the caller's generator draws what it would have drawn. Worker processes of the
experiment engine inherit the mode.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adamlab.experiments.executors import process_pool
from adamlab.models import CNN, MLP, VAE, LogisticRegression
from adamlab.nn import PERTURB_ENV, glorot_uniform, he_normal, perturbation, set_perturbation

F32_ROUNDING = 2.0**-23  # the relative change float32 rounding may add to a perturbed weight


@pytest.fixture(autouse=True)
def mode_off(monkeypatch):
    """Each test starts with the mode off; whatever it sets is undone afterwards."""
    monkeypatch.delenv(PERTURB_ENV, raising=False)


def weights(model) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.params.items()}


def small_models(seed: int, dtype=np.float32) -> list:
    """One small model of each kind (their weights come from the Glorot and He initialisers)."""
    return [MLP((20, 30, 30, 5), rng=seed, hidden_dropout=0.5, dtype=dtype),
            LogisticRegression(20, 5, rng=seed, dtype=dtype),
            CNN(input_shape=(8, 8, 3), channels=(4,), fc=6, rng=seed, dtype=dtype),
            VAE(20, 12, 3, rng=seed, dtype=dtype)]


def test_off_by_default_the_initialisers_draw_as_before():
    assert perturbation() is None
    a = math.sqrt(6.0 / (30 + 40))
    expected = np.random.default_rng(5).uniform(-a, a, size=(30, 40)).astype(np.float32)
    np.testing.assert_array_equal(glorot_uniform((30, 40), np.random.default_rng(5)), expected)
    expected = (np.random.default_rng(5).standard_normal((30, 40)) * math.sqrt(2 / 30))
    np.testing.assert_array_equal(he_normal((30, 40), np.random.default_rng(5), np.float64),
                                  expected)


@pytest.mark.parametrize("off", ["", "0", "0.0", " 0:4 "])
def test_empty_or_zero_is_off_and_bit_identical(monkeypatch, off):
    reference = [weights(m) for m in small_models(1)]
    monkeypatch.setenv(PERTURB_ENV, off)
    assert perturbation() is None
    for ref, model in zip(reference, small_models(1)):
        for k in ref:
            np.testing.assert_array_equal(model.params[k], ref[k], err_msg=k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rel", [1e-6, 1e-3])
def test_on_every_weight_moves_by_at_most_rel(monkeypatch, dtype, rel):
    reference = [weights(m) for m in small_models(2, dtype)]
    monkeypatch.setenv(PERTURB_ENV, f"{rel}:7")
    slack = F32_ROUNDING if dtype == np.float32 else 4 * np.finfo(np.float64).eps
    for ref, model in zip(reference, small_models(2, dtype)):
        for k, w0 in ref.items():
            w = model.params[k]
            if k.endswith(".b"):  # biases start at 0 and stay 0
                np.testing.assert_array_equal(w, 0.0, err_msg=k)
                continue
            w0 = w0.astype(np.float64)
            change = np.abs(w.astype(np.float64) - w0) / np.abs(w0)
            assert change.max() <= rel * (1 + 1e-12) + slack, k
            assert change.max() > rel / 2, k
            assert np.mean(w != w0) > 0.9, k  # nearly every entry moved


def test_on_in_float64_matches_the_format():
    set_perturbation(1e-6, seed=3)
    assert perturbation() == (1e-6, 3)
    w0 = np.random.default_rng(0).standard_normal((50, 20)) * math.sqrt(2 / 50)
    w = he_normal((50, 20), np.random.default_rng(0), np.float64)
    change = (w - w0) / w0
    assert np.abs(change).max() <= 1e-6 * (1 + 1e-9)
    assert change.min() < -5e-7 and change.max() > 5e-7  # both signs: uniform in [-rel, rel]


def test_perturbation_seeds_give_different_weights_and_each_seed_reproduces():
    draws = {}
    for seed in (0, 1, 2, 1):
        set_perturbation(1e-6, seed)
        draws.setdefault(seed, []).append(MLP((20, 30, 5), rng=4).params["fc1.W"].copy())
    np.testing.assert_array_equal(draws[1][0], draws[1][1])
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert np.mean(draws[a][0] != draws[b][0]) > 0.9, (a, b)


def test_the_perturbation_does_not_depend_on_what_was_built_before():
    set_perturbation(1e-6, 5)
    alone = MLP((20, 30, 5), rng=4).params["fc2.W"].copy()
    MLP((20, 30, 5), rng=9)
    LogisticRegression(20, 5, rng=1)
    again = MLP((20, 30, 5), rng=4).params["fc2.W"]
    np.testing.assert_array_equal(again, alone)


def test_the_callers_generator_draws_the_same_afterwards():
    follow = []
    for rel in (None, 1e-6):
        set_perturbation(rel, 8)
        rng = np.random.default_rng(11)
        MLP((20, 30, 30, 5), rng=rng)
        glorot_uniform((6, 7), rng)
        follow.append(rng.random(10))
    np.testing.assert_array_equal(follow[0], follow[1])


def test_set_perturbation_none_turns_it_off():
    reference = MLP((20, 30, 5), rng=3).params["fc1.W"].copy()
    set_perturbation(1e-6, 1)
    assert not np.array_equal(MLP((20, 30, 5), rng=3).params["fc1.W"], reference)
    set_perturbation(None)
    assert perturbation() is None
    np.testing.assert_array_equal(MLP((20, 30, 5), rng=3).params["fc1.W"], reference)


@pytest.mark.parametrize("bad", ["abc", "-1e-6", "1", "2.5", "nan", "inf", "1e-6:x", "1e-6:-2",
                                 "1e-6:1:2", "1e-6:1.5", ":3"])
def test_bad_values_are_rejected_naming_the_variable_and_the_format(monkeypatch, bad):
    monkeypatch.setenv(PERTURB_ENV, bad)
    with pytest.raises(ValueError, match=rf"{PERTURB_ENV}=.* expected REL or REL:SEED"):
        perturbation()
    with pytest.raises(ValueError, match=PERTURB_ENV):
        MLP((4, 3, 2), rng=0)


@pytest.mark.parametrize("rel, seed", [(-1e-6, 0), (1.0, 0), (math.nan, 0), (1e-6, -1),
                                       (1e-6, 1.5), (1e-6, True)])
def test_set_perturbation_rejects_bad_arguments(rel, seed):
    with pytest.raises(ValueError, match="REL:SEED|seed"):
        set_perturbation(rel, seed)
    assert perturbation() is None


def test_the_engines_worker_processes_perturb_alike():
    shape = (40, 30)
    plain = glorot_uniform(shape, np.random.default_rng(6))
    set_perturbation(1e-6, 2)
    here = glorot_uniform(shape, np.random.default_rng(6))
    with process_pool(1) as ex:
        there = ex.submit(glorot_uniform, shape, np.random.default_rng(6)).result(timeout=120)
    np.testing.assert_array_equal(there, here)
    assert not np.array_equal(there, plain)


def test_provenance_records_the_mode(monkeypatch):
    from adamlab.experiments.provenance import machine_info

    assert machine_info()["perturbation"] is None
    monkeypatch.setenv(PERTURB_ENV, "1e-6:4")
    assert machine_info()["perturbation"] == [1e-6, 4]


def test_refresh_refuses_to_store_perturbed_outputs(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "refresh_notebooks.py"
    nb = tmp_path / "x.ipynb"
    nb.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    before = nb.read_text()
    proc = subprocess.run([sys.executable, str(script), str(nb)], capture_output=True, text=True,
                          env={**os.environ, PERTURB_ENV: "1e-6"}, timeout=60)
    assert proc.returncode == 2 and "perturbation mode" in proc.stderr
    assert nb.read_text() == before
