"""Core tests of adamlab.optim and adamlab.problems.

What is checked, for every optimizer (SGD, Momentum, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam,
AdaMax, AMSGrad, and TemporalAverage where it applies):

* bad input: every hyper-parameter rejects bad values with a ValueError naming it and the value;
  grads that do not match params (names, shapes, dtypes, finiteness) are rejected before anything
  changes;
* zero gradients: which steps are no-ops and which move (and why);
* convergence on an ill-conditioned quadratic and on Rosenbrock, with the tuned hyper-parameters and
  the tolerance of each case in the tables CONVERGENCE_QUADRATIC / CONVERGENCE_ROSENBROCK;
* equivalences in float64 (the paper's own claims and our reference forms);
* state_dict round trips (bit-identical continuation), dtype preservation, chunking and strides.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings

import numpy as np
import pytest

from adamlab import problems
from adamlab.optim import (
    SGD,
    AdaDelta,
    AdaGrad,
    AdaMax,
    Adam,
    AMSGrad,
    Momentum,
    Nesterov,
    Optimizer,
    RMSProp,
    TemporalAverage,
    algorithm1_step,
    efficient_step,
    inverse_sqrt,
)
from adamlab.optim import base

ALL = [SGD, Momentum, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam, AdaMax, AMSGrad]

#: Constructors covering every code path: the nine defaults plus the variants with extra state or
#: extra constants.
CONFIGS = {
    **{cls.__name__: (lambda cls=cls: cls()) for cls in ALL},
    "RMSProp(momentum, bias_correction)": lambda: RMSProp(momentum=0.9, bias_correction=True),
    "Adam(beta1_decay, inverse_sqrt)": lambda: Adam(lr=inverse_sqrt(0.01), beta1_decay=0.99),
    "Adam(bias_correction=False)": lambda: Adam(bias_correction=False),
    "AMSGrad(bias_correction=True)": lambda: AMSGrad(bias_correction=True),
    "Adam(eps=0)": lambda: Adam(eps=0.0),
    "AdaGrad(eps=0)": lambda: AdaGrad(eps=0.0),
}


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w": rng.standard_normal((3, 4)).astype(dtype),
        "b": rng.standard_normal(5).astype(dtype),
    }


def noisy_grads(params, step, seed=1):
    """Gradient of ½·Σ c·θ² plus deterministic noise: depends on params, so paths depend on state."""
    rng = np.random.default_rng([seed, step])
    return {
        name: (0.5 * p + rng.standard_normal(p.shape)).astype(p.dtype) for name, p in params.items()
    }


def run(opt, params, steps, start=0):
    for k in range(start, start + steps):
        opt.update(params, noisy_grads(params, k))
    return params


# ============================================================================ hyper-parameters

LR_BAD = [0.0, -1e-3, math.nan, math.inf, "0.1", None, type(inverse_sqrt(1.0))]  # a class is no schedule
UNIT_BAD = [-0.1, 1.0, 1.5, math.nan]  # must lie in [0, 1)
POS_BAD = [0.0, -1e-8, math.inf]  # must be > 0
NONNEG_BAD = [-1e-8, math.inf, math.nan]  # must be >= 0
BOOL_BAD = [1, "yes", None]
OPEN_UNIT_BAD = [0.0, 1.0, -0.5]  # must lie in (0, 1)

#: class -> {hyper-parameter: bad values}; test_every_hyperparameter_is_covered keeps it complete.
BAD_HYPER = {
    SGD: {"lr": LR_BAD},
    Momentum: {"lr": LR_BAD, "momentum": UNIT_BAD},
    Nesterov: {"lr": LR_BAD, "momentum": UNIT_BAD},
    AdaGrad: {"lr": LR_BAD, "eps": NONNEG_BAD},
    RMSProp: {"lr": LR_BAD, "beta2": UNIT_BAD, "eps": NONNEG_BAD, "momentum": UNIT_BAD,
              "bias_correction": BOOL_BAD},
    AdaDelta: {"lr": LR_BAD, "rho": UNIT_BAD, "eps": POS_BAD},
    Adam: {"lr": LR_BAD, "beta1": UNIT_BAD, "beta2": UNIT_BAD, "eps": NONNEG_BAD,
           "bias_correction": BOOL_BAD, "beta1_decay": OPEN_UNIT_BAD},
    AdaMax: {"lr": LR_BAD, "beta1": UNIT_BAD, "beta2": UNIT_BAD},
    AMSGrad: {"lr": LR_BAD, "beta1": UNIT_BAD, "beta2": UNIT_BAD, "eps": NONNEG_BAD,
              "bias_correction": BOOL_BAD},
    TemporalAverage: {"beta": UNIT_BAD},
}


@pytest.mark.parametrize("cls", list(BAD_HYPER), ids=lambda c: c.__name__)
def test_every_hyperparameter_is_covered(cls):
    assert set(inspect.signature(cls).parameters) == set(BAD_HYPER[cls])


@pytest.mark.parametrize(
    "cls,name,value",
    [(cls, name, value) for cls, table in BAD_HYPER.items() for name, values in table.items()
     for value in values],
    ids=lambda x: x.__name__ if isinstance(x, type) else repr(x),
)
def test_invalid_hyperparameter_names_parameter_and_value(cls, name, value):
    with pytest.raises(ValueError) as info:
        cls(**{name: value})
    message = str(info.value)
    assert message.startswith(f"{name} must be"), message
    assert message.endswith(f"got {value!r}"), message


def test_error_message_format_is_the_documented_one():
    with pytest.raises(ValueError, match=r"^beta2 must be in \[0, 1\), got 1\.0$"):
        Adam(beta2=1.0)


def test_defaults_are_the_papers():
    assert Adam().hyperparams() == {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                    "bias_correction": True, "beta1_decay": None}
    assert AdaMax().hyperparams() == {"lr": 0.002, "beta1": 0.9, "beta2": 0.999}
    assert AMSGrad().bias_correction is False
    assert (Adam.slots, AMSGrad.slots, AdaMax.slots) == (("m", "v"), ("m", "v", "v_hat"), ("m", "u"))
    assert RMSProp().slots == ("v",) and RMSProp(momentum=0.5).slots == ("v", "velocity")


@pytest.mark.parametrize("bad", [-1.0, math.nan, 0.0])
def test_schedule_returning_a_bad_step_size_raises_and_changes_nothing(bad):
    params = make_params()
    before = copy.deepcopy(params)
    opt = Adam(lr=lambda t: bad)
    with pytest.raises(ValueError, match=r"lr schedule .* returned .* at t=1"):
        opt.update(params, noisy_grads(params, 0))
    assert opt.t == 0 and not opt.state
    for k in params:
        assert np.array_equal(params[k], before[k])


# ============================================================================ bad grads and params


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_grads_with_other_names_are_rejected(cls):
    opt = cls()
    params = make_params()
    grads = noisy_grads(params, 0)
    del grads["b"]
    with pytest.raises(ValueError, match="missing grads: 'b'"):
        opt.update(params, grads)
    grads = noisy_grads(params, 0)
    grads["extra"] = np.zeros(2)
    with pytest.raises(ValueError, match="grads without a parameter: 'extra'"):
        opt.update(params, grads)
    assert opt.t == 0


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_grad_shape_mismatch_names_parameter_and_shapes(cls):
    params = make_params()
    grads = noisy_grads(params, 0)
    grads["w"] = grads["w"].T.copy()
    with pytest.raises(ValueError, match=r"grad 'w' has shape \(4, 3\) but the parameter has shape \(3, 4\)"):
        cls().update(params, grads)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_grad_raises_before_anything_changes(cls, bad):
    opt = cls()
    params = run(opt, make_params(), 3)
    params_before = copy.deepcopy(params)
    state_before = opt.state_dict()
    grads = noisy_grads(params, 3)
    grads["b"][2] = bad  # "w" is fine and is updated first: it must stay untouched too
    with pytest.raises(FloatingPointError, match="non-finite gradient for parameter 'b'"):
        opt.update(params, grads)
    assert opt.t == 3
    for k in params:
        assert np.array_equal(params[k], params_before[k])
        for slot in opt.slots:
            assert np.array_equal(opt.state[k][slot], state_before["state"][k][slot])


@pytest.mark.parametrize("n", [10, 100_000], ids=["small", "large"])
def test_finiteness_check_tells_overflowing_sum_from_non_finite_entries(n):
    big = np.full(n, np.finfo(np.float32).max, dtype=np.float32)  # sum overflows, entries finite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert base.all_finite(big)
        for bad in (np.nan, np.inf, -np.inf):
            x = big.copy()
            x[n // 2] = bad
            x[:2] = [np.inf, -np.inf] if bad is np.nan else x[:2]  # inf - inf in the sum
            assert not base.all_finite(x)
            assert not base.all_finite(np.stack([x, x], axis=1)[:, 0])  # strided: the other path
            assert not base.all_finite(np.asfortranarray(np.stack([x, x])))
    assert base.all_finite(np.zeros(0))
    assert base.all_finite(np.stack([big, big], axis=1)[:, 1])


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_bad_dtypes_and_types_raise_type_error(cls):
    with pytest.raises(TypeError, match="parameter 'i' must be float32 or float64, got int64"):
        cls().update({"i": np.arange(3)}, {"i": np.ones(3)})
    with pytest.raises(TypeError, match="parameter 'h' must be float32 or float64, got float16"):
        cls().update({"h": np.zeros(3, np.float16)}, {"h": np.ones(3, np.float16)})
    with pytest.raises(TypeError, match=r"grad 'x' has dtype float64 but the parameter has dtype float32"):
        cls().update({"x": np.ones(3, np.float32)}, {"x": np.ones(3)})
    with pytest.raises(TypeError, match="grad 'x' must be a numpy array, got list"):
        cls().update({"x": np.ones(3)}, {"x": [1.0, 2.0, 3.0]})
    with pytest.raises(TypeError, match="parameter 'x' must be a numpy array, got float"):
        cls().update({"x": 1.0}, {"x": np.ones(())})
    with pytest.raises(TypeError, match="params must be a dict"):
        cls().update([np.ones(3)], {"x": np.ones(3)})


def test_params_must_keep_names_and_shapes_once_state_exists():
    opt = Adam()
    params = run(opt, make_params(), 2)
    with pytest.raises(ValueError, match=r"missing: 'b'; unknown: 'c'"):
        opt.update({"w": params["w"], "c": params["b"]}, {"w": params["w"], "c": params["b"]})
    with pytest.raises(ValueError, match=r"state 'm' of parameter 'b' has shape \(5,\)"):
        p = {"w": params["w"], "b": np.zeros(6)}
        opt.update(p, {"w": params["w"], "b": np.zeros(6)})
    assert opt.t == 2


def test_load_state_dict_rejects_foreign_or_malformed_states():
    params = make_params()
    adam = Adam()
    run(adam, params, 2)
    sd = adam.state_dict()
    with pytest.raises(ValueError, match="state_dict is from 'Adam', cannot load it into 'AMSGrad'"):
        AMSGrad().load_state_dict(sd)
    with pytest.raises(ValueError, match=r"must have slots 'm', 'v', got 'm'"):
        broken = copy.deepcopy(sd)
        del broken["state"]["w"]["v"]
        Adam().load_state_dict(broken)
    with pytest.raises(ValueError, match="non-negative integer"):
        Adam().load_state_dict({**sd, "t": -1})
    with pytest.raises(ValueError, match="floating ndarray"):
        broken = copy.deepcopy(sd)
        broken["state"]["b"]["m"] = np.zeros(5, dtype=int)
        Adam().load_state_dict(broken)
    with pytest.raises(ValueError, match="slot 'v' has shape"):
        broken = copy.deepcopy(sd)
        broken["state"]["b"]["v"] = np.zeros(4)
        Adam().load_state_dict(broken)
    with pytest.raises(ValueError, match="no 'state' entry"):
        Adam().load_state_dict({"optimizer": "Adam", "t": 0})
    with pytest.raises(ValueError, match=r"must have slots 'v', 'velocity', got 'v'"):
        broken = run_and_save(RMSProp(momentum=0.9), 2)
        del broken["state"]["w"]["velocity"]
        RMSProp(momentum=0.9).load_state_dict(broken)
    # A state for other parameter shapes is rejected on the next update.
    opt = Adam()
    opt.load_state_dict(sd)
    wrong = {"w": np.zeros((4, 3)), "b": np.zeros(5)}
    with pytest.raises(ValueError, match=r"state 'm' of parameter 'w' has shape \(3, 4\)"):
        opt.update(wrong, {k: np.zeros_like(v) for k, v in wrong.items()})


def run_and_save(opt, steps):
    run(opt, make_params(), steps)
    return opt.state_dict()


# ============================================================================ zero gradients

#: After some nonzero steps, does a step with g = 0 leave the parameters unchanged?
#: No-op exactly when the step is proportional to the current g_t:
#:   SGD (α·g), AdaGrad (α·g/(√s+ε), s unchanged), RMSProp without momentum (α·g/(√v̂+ε); v decays),
#:   AdaDelta (Δx ∝ g_t).
#: Moves when the step carries history: Momentum, Nesterov and RMSProp(momentum) keep a velocity;
#:   Adam, AMSGrad and AdaMax step along m_t = β1·m_{t−1} ≠ 0.
ZERO_GRAD_AFTER_WARMUP_IS_NOOP = {
    "SGD": True, "Momentum": False, "Nesterov": False, "AdaGrad": True, "RMSProp": True,
    "AdaDelta": True, "Adam": False, "AdaMax": False, "AMSGrad": False,
    "RMSProp(momentum, bias_correction)": False, "Adam(beta1_decay, inverse_sqrt)": False,
    "Adam(bias_correction=False)": False, "AMSGrad(bias_correction=True)": False,
    "Adam(eps=0)": False, "AdaGrad(eps=0)": True,
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_zero_gradient_from_fresh_state_is_a_noop(name):
    # With all state at zero every rule gives a zero step; AdaMax (u = 0), Adam(eps=0) (√v = 0) and
    # AdaGrad(eps=0) (√s = 0) would give 0/0 without their guard.
    opt = CONFIGS[name]()
    params = make_params()
    before = copy.deepcopy(params)
    for _ in range(3):
        opt.update(params, {k: np.zeros_like(v) for k, v in params.items()})
    assert opt.t == 3
    for k in params:
        assert np.array_equal(params[k], before[k])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_zero_gradient_after_warmup(name):
    opt = CONFIGS[name]()
    params = run(opt, make_params(), 4)
    before = copy.deepcopy(params)
    opt.update(params, {k: np.zeros_like(v) for k, v in params.items()})
    unchanged = all(np.array_equal(params[k], before[k]) for k in params)
    assert unchanged == ZERO_GRAD_AFTER_WARMUP_IS_NOOP[name]
    assert all(np.all(np.isfinite(p)) for p in params.values())


def test_adagrad_accumulator_is_unchanged_by_zero_gradients():
    opt = AdaGrad()
    params = run(opt, make_params(), 3)
    s = opt.state["w"]["sum_sq"].copy()
    opt.update(params, {k: np.zeros_like(v) for k, v in params.items()})
    assert np.array_equal(opt.state["w"]["sum_sq"], s)


# ============================================================================ convergence

SCALES = np.array([1.0, 100.0])  # condition number 100


def quad(theta):
    return problems.quadratic(theta, SCALES)


#: optimizer, steps, tolerance on max|θ_T − θ*| for f = ½(θ1² + 100·θ2²) from θ0 = (1, 1).
CONVERGENCE_QUADRATIC = {
    "SGD": (lambda: SGD(lr=0.019), 2000, 1e-10),
    "Momentum": (lambda: Momentum(lr=0.01, momentum=0.9), 2000, 1e-10),
    "Nesterov": (lambda: Nesterov(lr=0.01, momentum=0.9), 2000, 1e-10),
    "AdaGrad": (lambda: AdaGrad(lr=1.0), 2000, 1e-10),
    "RMSProp": (lambda: RMSProp(lr=0.001, beta2=0.99), 2000, 1e-10),
    "AdaDelta": (lambda: AdaDelta(lr=1.0, rho=0.999, eps=1e-4), 2000, 1e-6),
    "Adam": (lambda: Adam(lr=0.1), 2000, 1e-10),
    "AdaMax": (lambda: AdaMax(lr=0.1), 2000, 1e-10),
    "AMSGrad": (lambda: AMSGrad(lr=0.01), 2000, 1e-10),
}

#: optimizer, steps, tolerance on max|θ_T − (1, 1)| for Rosenbrock (a=1, b=100) from (−1.2, 1).
CONVERGENCE_ROSENBROCK = {
    "SGD": (lambda: SGD(lr=0.0015), 20000, 1e-4),
    "Momentum": (lambda: Momentum(lr=0.001, momentum=0.95), 5000, 1e-8),
    "Nesterov": (lambda: Nesterov(lr=0.001, momentum=0.95), 5000, 1e-8),
    "AdaGrad": (lambda: AdaGrad(lr=1.0), 20000, 1e-5),
    "RMSProp": (lambda: RMSProp(lr=inverse_sqrt(0.03), beta2=0.9), 20000, 1e-3),
    "RMSProp(momentum)": (lambda: RMSProp(lr=0.001, beta2=0.99, momentum=0.9), 20000, 1e-3),
    "AdaDelta": (lambda: AdaDelta(lr=0.1, rho=0.9999, eps=1e-4), 20000, 1e-4),
    "Adam": (lambda: Adam(lr=0.03), 5000, 1e-8),
    "AdaMax": (lambda: AdaMax(lr=0.03), 5000, 1e-6),
    "AMSGrad": (lambda: AMSGrad(lr=0.1), 5000, 1e-7),
}


@pytest.mark.parametrize("name", list(CONVERGENCE_QUADRATIC))
def test_converges_on_ill_conditioned_quadratic(name):
    make, steps, tol = CONVERGENCE_QUADRATIC[name]
    path = problems.optimize(make(), quad, [1.0, 1.0], steps)
    losses = [quad(th)[0] for th in path[:: steps // 10]]
    assert losses[-1] < losses[0]
    assert np.max(np.abs(path[-1])) < tol


@pytest.mark.parametrize("name", list(CONVERGENCE_ROSENBROCK))
def test_converges_on_rosenbrock(name):
    make, steps, tol = CONVERGENCE_ROSENBROCK[name]
    path = problems.optimize(make(), problems.rosenbrock, [-1.2, 1.0], steps)
    assert problems.rosenbrock(path[-1])[0] < problems.rosenbrock(path[0])[0]
    assert np.max(np.abs(path[-1] - 1.0)) < tol


# ============================================================================ equivalences (float64)


def random_grads(steps, shape=(40,), scale=1.0, seed=3):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(shape) for _ in range(steps)]


def run_fixed(opt, theta0, grads):
    """Apply a fixed gradient sequence; returns the path of θ (one row per step, θ_0 first)."""
    params = {"theta": np.array(theta0, dtype=np.float64)}
    path = [params["theta"].copy()]
    for g in grads:
        opt.update(params, {"theta": g})
        path.append(params["theta"].copy())
    return np.array(path)


def test_adam_with_beta1_zero_is_bias_corrected_rmsprop():
    grads = random_grads(50)
    a = run_fixed(Adam(lr=0.01, beta1=0.0, beta2=0.99, eps=1e-6), np.ones(40), grads)
    r = run_fixed(RMSProp(lr=0.01, beta2=0.99, eps=1e-6, bias_correction=True), np.ones(40), grads)
    np.testing.assert_allclose(a, r, rtol=1e-12, atol=0)
    # ... and differs from uncorrected RMSProp (the correction matters early on).
    u = run_fixed(RMSProp(lr=0.01, beta2=0.99, eps=1e-6), np.ones(40), grads)
    assert np.max(np.abs(u - a)) > 1e-3


@pytest.mark.parametrize("lr", [1e-2, inverse_sqrt(0.05)], ids=["constant", "inverse_sqrt"])
@pytest.mark.parametrize("scale", [1.0, 1e-7], ids=["g~1", "g~1e-7 (eps matters)"])
def test_adam_class_is_algorithm1_iterated(lr, scale):
    rng = np.random.default_rng(7)
    theta = rng.standard_normal(40)
    grads = random_grads(30, scale=scale)
    opt = Adam(lr=lr)
    params = {"theta": theta.copy()}
    m, v = np.zeros(40), np.zeros(40)
    for t, g in enumerate(grads, start=1):
        alpha = lr(t) if callable(lr) else lr
        theta, m, v = algorithm1_step(theta, g, m, v, t, alpha, 0.9, 0.999, 1e-8)
        opt.update(params, {"theta": g})
        np.testing.assert_allclose(params["theta"], theta, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(opt.state["theta"]["m"], m, rtol=1e-12, atol=0)
        np.testing.assert_allclose(opt.state["theta"]["v"], v, rtol=1e-12, atol=0)
    assert opt.t == 30


def test_efficient_form_equals_algorithm1_exactly_when_eps_hat_is_scaled():
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, 1e-3
    rng = np.random.default_rng(11)
    theta = rng.standard_normal(40)
    m, v = np.zeros(40), np.zeros(40)
    worst_unscaled = 0.0
    for t, g in enumerate(random_grads(20, scale=1e-8), start=1):  # |g| ~ ε: ε̂ matters
        ref = algorithm1_step(theta, g, m, v, t, lr, beta1, beta2, eps)
        eff = efficient_step(theta, g, m, v, t, lr, beta1, beta2, eps * math.sqrt(1 - beta2**t))
        for a, b in zip(ref, eff):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-18)
        naive = efficient_step(theta, g, m, v, t, lr, beta1, beta2, eps)  # reading ε̂ as ε
        worst_unscaled = max(worst_unscaled,
                             np.max(np.abs((naive[0] - theta) / (ref[0] - theta) - 1)))
        theta, m, v = ref
    assert worst_unscaled > 0.1  # so the comparison above can tell the two readings apart


def test_adam_without_bias_correction_is_the_uncorrected_formula():
    grads = random_grads(25)
    path = run_fixed(Adam(lr=0.01, bias_correction=False), np.zeros(40), grads)
    theta, m, v = np.zeros(40), np.zeros(40), np.zeros(40)
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        theta = theta - 0.01 * m / (np.sqrt(v) + 1e-8)
        np.testing.assert_allclose(path[t], theta, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["constant", "growing"])
def test_amsgrad_equals_adam_while_v_is_nondecreasing(kind):
    rng = np.random.default_rng(5)
    g0 = rng.standard_normal(40)
    grads = [g0 if kind == "constant" else g0 * (1 + 0.1 * t) for t in range(30)]
    for amsgrad, adam in [(AMSGrad(lr=0.01), Adam(lr=0.01, bias_correction=False)),
                          (AMSGrad(lr=0.01, bias_correction=True), Adam(lr=0.01))]:
        assert np.array_equal(run_fixed(amsgrad, np.zeros(40), grads),
                              run_fixed(adam, np.zeros(40), grads))
        assert np.array_equal(amsgrad.state["theta"]["v_hat"], amsgrad.state["theta"]["v"])


def test_amsgrad_differs_from_adam_once_v_decreases():
    rng = np.random.default_rng(5)
    g0 = rng.standard_normal(40)
    grads = [g0 * (10.0 if t < 5 else 0.1) for t in range(30)]
    ams, adam = AMSGrad(lr=0.01), Adam(lr=0.01, bias_correction=False)
    a, b = run_fixed(ams, np.zeros(40), grads), run_fixed(adam, np.zeros(40), grads)
    assert np.array_equal(a[:6], b[:6]) and not np.allclose(a[-1], b[-1])
    st = ams.state["theta"]
    assert np.all(st["v_hat"] >= st["v"]) and np.any(st["v_hat"] > st["v"])


@pytest.mark.parametrize("cls", [Momentum, Nesterov])
def test_momentum_zero_is_sgd(cls):
    grads = random_grads(20)
    assert np.array_equal(run_fixed(cls(lr=0.05, momentum=0.0), np.ones(40), grads),
                          run_fixed(SGD(lr=0.05), np.ones(40), grads))


def _adagrad_ref(grads, lr=0.05, eps=1e-8):
    theta, s, out = np.zeros(40), np.zeros(40), [np.zeros(40)]
    for g in grads:
        s = s + g**2  # s ← s + g²
        theta = theta - lr * g / (np.sqrt(s) + eps)
        out.append(theta)
    return np.array(out)


def _rmsprop_ref(grads, lr=0.01, beta2=0.9, eps=1e-8, momentum=0.0, bias_correction=False):
    theta, v, u, out = np.zeros(40), np.zeros(40), np.zeros(40), [np.zeros(40)]
    for t, g in enumerate(grads, start=1):
        v = beta2 * v + (1 - beta2) * g**2
        v_hat = v / (1 - beta2**t) if bias_correction else v
        step = lr * g / (np.sqrt(v_hat) + eps)
        u = momentum * u - step  # Graves 2013: momentum on the rescaled gradient
        theta = theta + u
        out.append(theta)
    return np.array(out)


def _adadelta_ref(grads, lr=1.0, rho=0.95, eps=1e-6):
    # Zeiler 2012, Algorithm 1, line by line.
    x, Eg2, Edx2, out = np.zeros(40), np.zeros(40), np.zeros(40), [np.zeros(40)]
    for g in grads:
        Eg2 = rho * Eg2 + (1 - rho) * g**2  # accumulate gradient
        dx = -np.sqrt(Edx2 + eps) / np.sqrt(Eg2 + eps) * g  # compute update
        Edx2 = rho * Edx2 + (1 - rho) * dx**2  # accumulate updates
        x = x + lr * dx  # apply update
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize(
    "make,reference",
    [
        (lambda: AdaGrad(lr=0.05), _adagrad_ref),
        (lambda: RMSProp(lr=0.01), _rmsprop_ref),
        (lambda: RMSProp(lr=0.01, bias_correction=True),
         lambda gs: _rmsprop_ref(gs, bias_correction=True)),
        (lambda: RMSProp(lr=0.01, momentum=0.9, bias_correction=True),
         lambda gs: _rmsprop_ref(gs, momentum=0.9, bias_correction=True)),
        (lambda: AdaDelta(), _adadelta_ref),
        (lambda: AdaDelta(lr=0.5, rho=0.9, eps=1e-4),
         lambda gs: _adadelta_ref(gs, lr=0.5, rho=0.9, eps=1e-4)),
    ],
    ids=["AdaGrad", "RMSProp", "RMSProp(bias_correction)", "RMSProp(momentum)", "AdaDelta",
         "AdaDelta(lr, rho, eps)"],
)
def test_matches_line_by_line_transcription_of_its_paper(make, reference):
    grads = random_grads(30)
    np.testing.assert_allclose(run_fixed(make(), np.zeros(40), grads), reference(grads),
                               rtol=1e-12, atol=1e-15)


def test_momentum_is_sutskever_eq1():
    lr, mu, scales = 0.01, 0.9, np.linspace(1, 50, 6)
    path = problems.optimize(Momentum(lr=lr, momentum=mu),
                             lambda th: problems.quadratic(th, scales), np.ones(6), 40)
    theta, vel = np.ones(6), np.zeros(6)
    for k in range(1, 41):
        vel = mu * vel - lr * scales * theta  # v ← μ·v − α·∇f(θ)
        theta = theta + vel
        np.testing.assert_allclose(path[k], theta, rtol=1e-12, atol=1e-15)


def test_nesterov_params_hold_the_lookahead_point_of_sutskever_eq2():
    lr, mu, scales = 0.01, 0.9, np.linspace(1, 50, 6)
    opt = Nesterov(lr=lr, momentum=mu)
    params = {"theta": np.ones(6)}
    theta, vel = np.ones(6), np.zeros(6)
    for _ in range(40):
        opt.update(params, {"theta": scales * params["theta"]})
        vel = mu * vel - lr * scales * (theta + mu * vel)  # v ← μ·v − α·∇f(θ + μ·v)
        theta = theta + vel
        np.testing.assert_allclose(params["theta"], theta + mu * vel, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(params["theta"] - mu * opt.state["theta"]["velocity"], theta,
                                   rtol=1e-12, atol=1e-15)


def test_adagrad_is_the_limit_of_adam():
    # §5: Adam with β1 = 0, α_t = α/√t, bias correction and (1 − β2) → 0 tends to AdaGrad,
    # since v̂_t → (1/t)·Σ g_i². Compared on a deterministic quadratic (gradients follow the path).
    scales = np.array([1.0, 10.0, 100.0])
    fun = lambda th: problems.quadratic(th, scales)  # noqa: E731
    theta0 = np.array([1.0, -1.0, 0.5])
    ada = problems.optimize(AdaGrad(lr=0.1, eps=0.0), fun, theta0, 50)
    errors = []
    for delta in [1e-2, 1e-3, 1e-4, 1e-5]:
        adam = Adam(lr=inverse_sqrt(0.1), beta1=0.0, beta2=1.0 - delta, eps=0.0)
        errors.append(np.max(np.abs(problems.optimize(adam, fun, theta0, 50) - ada)))
    for coarse, fine in zip(errors, errors[1:]):
        assert fine < coarse / 5  # error ∝ (1 − β2)
    assert errors[-1] < 1e-5
    # Without bias correction the correspondence breaks (§5): the error does not shrink.
    uncorrected = Adam(lr=inverse_sqrt(0.1), beta1=0.0, beta2=1.0 - 1e-5, eps=0.0,
                       bias_correction=False)
    assert np.max(np.abs(problems.optimize(uncorrected, fun, theta0, 50) - ada)) > 0.1


def test_adamax_is_the_p_to_infinity_limit_of_the_lp_update():
    beta1, beta2, lr, T = 0.9, 0.99, 0.002, 25
    grads = random_grads(T, shape=(30,), seed=9)
    opt = AdaMax(lr=lr, beta1=beta1, beta2=beta2)
    path = run_fixed(opt, np.zeros(30), grads)
    G = np.abs(np.array(grads))  # (T, d)
    decay = beta2 ** (T - np.arange(1, T + 1))[:, None]  # β2^(T−i)
    # §7.1: u_T = max(β2^(T−1)|g_1|, ..., β2|g_{T−1}|, |g_T|)
    u_explicit = np.max(decay * G, axis=0)
    np.testing.assert_allclose(opt.state["theta"]["u"], u_explicit, rtol=1e-14, atol=0)

    def lp_u(p, t):
        # (v_t)^(1/p) with v_t = (1 − β2^p)·Σ_i β2^(p(t−i))·|g_i|^p, in log space.
        logs = p * np.log(beta2 ** (t - np.arange(1, t + 1))[:, None] * G[:t])
        top = logs.max(axis=0)
        log_v = math.log1p(-beta2**p) + top + np.log(np.exp(logs - top).sum(axis=0))
        return np.exp(log_v / p)

    errors = [np.max(np.abs(lp_u(p, T) / u_explicit - 1)) for p in (10, 100, 1000, 10000)]
    assert all(fine < coarse for coarse, fine in zip(errors, errors[1:]))
    assert errors[-1] < 1e-3
    # The Lp update θ_t = θ_{t−1} − (α/(1 − β1^t))·m_t/u_t^(p) approaches AdaMax's path.
    def lp_path(p):
        theta, m, out = np.zeros(30), np.zeros(30), [np.zeros(30)]
        for t, g in enumerate(grads, start=1):
            m = beta1 * m + (1 - beta1) * g
            theta = theta - lr / (1 - beta1**t) * m / lp_u(p, t)
            out.append(theta)
        return np.array(out)

    path_errors = [np.max(np.abs(lp_path(p) - path)) for p in (10, 100, 1000, 10000)]
    assert all(fine < coarse for coarse, fine in zip(path_errors, path_errors[1:]))
    assert path_errors[-1] < 1e-3 * np.max(np.abs(path))


def test_beta1_decay_gives_beta1_times_lambda_to_the_t_minus_1():
    opt = Adam(lr=0.01, beta1=0.9, beta1_decay=0.5)
    assert [opt.beta1_at(t) for t in (1, 2, 3, 4)] == [0.9, 0.45, 0.225, 0.1125]
    grads = random_grads(15)
    path = run_fixed(opt, np.zeros(40), grads)
    theta, m, v = np.zeros(40), np.zeros(40), np.zeros(40)
    for t, g in enumerate(grads, start=1):
        b1t = 0.9 * 0.5 ** (t - 1)
        m = b1t * m + (1 - b1t) * g  # m_t ← β1,t·m_{t−1} + (1 − β1,t)·g_t
        v = 0.999 * v + 0.001 * g * g
        theta = theta - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(path[t], theta, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(opt.state["theta"]["m"], m, rtol=1e-12)


def test_inverse_sqrt_schedule():
    s = inverse_sqrt(0.3)
    assert [s(t) for t in (1, 4, 9, 100)] == [0.3, 0.15, 0.3 / 3, 0.03]
    assert repr(s) == "inverse_sqrt(alpha=0.3)"
    assert repr(Adam(lr=s)).startswith("Adam(lr=inverse_sqrt(alpha=0.3), ")
    with pytest.raises(ValueError, match="t must be an integer >= 1, got 0"):
        s(0)
    with pytest.raises(ValueError, match="alpha must be positive, got -1"):
        inverse_sqrt(-1)
    # An optimizer with the schedule takes step t with α/√t.
    grads = random_grads(10)
    a = run_fixed(SGD(lr=s), np.zeros(40), grads)
    expected = -np.cumsum([0.3 / math.sqrt(t) * g for t, g in enumerate(grads, start=1)], axis=0)
    np.testing.assert_allclose(a[1:], expected, rtol=1e-12)


# ============================================================================ state_dict round trip


def assert_same_state(a, b):
    assert a.t == b.t and set(a.state) == set(b.state)
    for name in a.state:
        assert set(a.state[name]) == set(b.state[name])
        for slot in a.state[name]:
            assert np.array_equal(a.state[name][slot], b.state[name][slot])
            assert a.state[name][slot].dtype == b.state[name][slot].dtype


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_round_trip_is_bit_identical(name):
    make = CONFIGS[name]
    original = make()
    params = run(original, make_params(np.float32), 7)
    saved = original.state_dict()
    frozen = copy.deepcopy(saved)
    resumed = make()
    resumed.load_state_dict(saved)
    resumed_params = copy.deepcopy(params)
    run(original, params, 5, start=7)  # the original continues ...
    run(resumed, resumed_params, 5, start=7)  # ... and so does the restored copy
    for k in params:
        assert np.array_equal(params[k], resumed_params[k])
    assert_same_state(original, resumed)
    # The saved state is a snapshot: later steps of either optimizer never changed it.
    assert saved["t"] == frozen["t"] == 7
    for n, slots in frozen["state"].items():
        for slot, arr in slots.items():
            assert np.array_equal(saved["state"][n][slot], arr)


def test_state_dict_arrays_are_copies_both_ways():
    opt = Adam()
    params = run(opt, make_params(), 2)
    sd = opt.state_dict()
    assert not np.shares_memory(sd["state"]["w"]["m"], opt.state["w"]["m"])
    other = Adam()
    other.load_state_dict(sd)
    sd["state"]["w"]["m"][...] = 123.0  # mutating the dict after loading changes nothing
    assert not np.any(other.state["w"]["m"] == 123.0)
    assert sd["hyperparams"]["beta2"] == 0.999 and sd["optimizer"] == "Adam"
    del params


def test_temporal_average_round_trip_and_snapshot():
    seq = [make_params(np.float32, seed=s) for s in range(12)]
    a = TemporalAverage(beta=0.9)
    for p in seq[:7]:
        a.update(p)
    saved = a.state_dict()
    frozen = copy.deepcopy(saved)
    b = TemporalAverage(beta=0.9)
    b.load_state_dict(saved)
    for p in seq[7:]:
        a.update(p)
        b.update(p)
    assert_same_state(a, b)
    for k, v in a.average().items():
        assert np.array_equal(v, b.average()[k])
    for n in frozen["state"]:
        assert np.array_equal(saved["state"][n]["avg"], frozen["state"][n]["avg"])


# ============================================================================ TemporalAverage


def test_temporal_average_is_the_bias_corrected_ema():
    beta = 0.8
    seq = [make_params(seed=s) for s in range(10)]
    avg = TemporalAverage(beta=beta)
    with pytest.raises(ValueError, match="needs at least one update"):
        avg.average()
    bar = {k: np.zeros_like(v) for k, v in seq[0].items()}
    for t, p in enumerate(seq, start=1):
        avg.update(p)
        for k in bar:
            bar[k] = beta * bar[k] + (1 - beta) * p[k]  # θ̄_t ← β·θ̄_{t−1} + (1 − β)·θ_t
        out = avg.average()
        for k in bar:
            np.testing.assert_allclose(out[k], bar[k] / (1 - beta**t), rtol=1e-12)
    out[k][...] = 0.0  # a new dict of new arrays
    assert not np.all(avg.average()[k] == 0.0)
    # The bias correction makes the average of a constant sequence that constant.
    const = TemporalAverage(beta=0.999)
    p = make_params()
    for _ in range(3):
        const.update(p)
    for k in p:
        np.testing.assert_allclose(const.average()[k], p[k], rtol=1e-12)


def test_temporal_average_checks_params():
    avg = TemporalAverage()
    avg.update(make_params())
    with pytest.raises(ValueError, match="missing: 'b'"):
        avg.update({"w": np.zeros((3, 4))})
    with pytest.raises(TypeError, match="float32 or float64"):
        TemporalAverage().update({"i": np.arange(3)})


# ============================================================================ dtypes, chunks, strides


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_dtype_is_preserved(name, dtype):
    opt = CONFIGS[name]()
    params = run(opt, make_params(dtype), 3)
    for k, p in params.items():
        assert p.dtype == dtype and np.all(np.isfinite(p))
        for slot in opt.slots:
            assert opt.state[k][slot].dtype == dtype


@pytest.mark.parametrize("name", list(CONFIGS))
def test_chunking_and_strides_do_not_change_results(name, monkeypatch):
    rng = np.random.default_rng(4)
    big = rng.standard_normal((6, 40))
    reference = {"a": big.copy(), "s": big[:, ::2].copy()}
    ref_opt = CONFIGS[name]()
    for k in range(4):
        g = {n: np.sin(p + k) for n, p in reference.items()}
        ref_opt.update(reference, g)
    monkeypatch.setattr(base, "CHUNK", 7)  # many chunks, the last one partial
    holder = big.copy()
    params = {"a": big.copy(), "s": holder[:, ::2]}  # "s" is a strided view: updated in place
    opt = CONFIGS[name]()
    for k in range(4):
        g = {n: np.sin(p + k) for n, p in params.items()}
        g["a"] = np.asfortranarray(g["a"])  # a strided gradient is fine too
        opt.update(params, g)
    for n in reference:
        assert np.array_equal(params[n], reference[n])
    assert np.array_equal(holder[:, ::2], reference["s"])
    assert np.array_equal(holder[:, 1::2], big[:, 1::2])


def test_empty_and_scalar_parameters():
    opt = Adam(lr=0.1)
    params = {"e": np.zeros((0, 3)), "s": np.array(1.0)}
    opt.update(params, {"e": np.zeros((0, 3)), "s": np.array(2.0)})
    assert params["s"].shape == () and params["s"] < 1.0 and opt.t == 1


def test_optimizer_is_the_common_base_and_t_counts_updates():
    for cls in ALL:
        opt = cls()
        assert isinstance(opt, Optimizer) and opt.t == 0
        run(opt, make_params(), 3)
        assert opt.t == 3


# ============================================================================ problems


def test_rosenbrock_value_gradient_and_minimum():
    for a, b in [(1.0, 100.0), (2.0, 10.0)]:
        f, g = problems.rosenbrock(np.array([a, a * a]), a, b)
        assert f == 0.0 and np.array_equal(g, [0.0, 0.0])
        x = np.array([-1.2, 1.0])
        f, g = problems.rosenbrock(x, a, b)
        assert f == pytest.approx((a + 1.2) ** 2 + b * (1.0 - 1.44) ** 2)
        h = 1e-6
        fd = [(problems.rosenbrock(x + h * e, a, b)[0] - problems.rosenbrock(x - h * e, a, b)[0])
              / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(g, fd, rtol=1e-7)
    with pytest.raises(ValueError, match=r"shape \(2,\), got \(3,\)"):
        problems.rosenbrock(np.zeros(3))


def test_quadratic_value_and_gradient():
    f, g = problems.quadratic(np.array([1.0, -2.0]), [1.0, 100.0])
    assert f == 0.5 * (1.0 + 400.0) and np.array_equal(g, [1.0, -200.0])
    with pytest.raises(ValueError, match="scales has shape"):
        problems.quadratic(np.zeros(2), [1.0])


def test_optimize_returns_the_path_and_leaves_theta0_alone():
    theta0 = np.array([1.0, 1.0])
    path = problems.optimize(SGD(lr=0.1), quad, theta0, 5)
    assert path.shape == (6, 2) and path.dtype == np.float64
    assert np.array_equal(path[0], [1.0, 1.0]) and np.array_equal(theta0, [1.0, 1.0])
    assert path[1] == pytest.approx([0.9, 1.0 - 0.1 * 100.0])
    assert problems.optimize(SGD(), quad, [1.0, 2.0], 0).shape == (1, 2)
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        problems.optimize(SGD(), quad, theta0, -1)
    with pytest.raises(ValueError, match="1-D vector"):
        problems.optimize(SGD(), quad, np.zeros((2, 2)), 1)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_worker_threads_give_bit_identical_results(name, monkeypatch):
    """Large updates are split across threads; element-wise rules make the split invisible.

    The chunks are large enough (4096) for NumPy to release the GIL inside each ufunc call, so the
    workers really run at the same time; a worker writing into another worker's scratch buffers
    (the race this guards against) shows up as a difference.
    """
    rng = np.random.default_rng(5)
    shapes = {"w": (301, 997), "b": (40_000,), "v": (3, 3, 9)}
    start = {n: rng.standard_normal(s) for n, s in shapes.items()}
    grads = [{n: rng.standard_normal(s) for n, s in shapes.items()} for _ in range(3)]

    def run(threads):
        base.set_num_threads(threads)
        params = {n: p.copy() for n, p in start.items()}
        opt = CONFIGS[name]()
        for g in grads:
            opt.update(params, g)
        return params, opt.state_dict()

    monkeypatch.setattr(base, "CHUNK", 4096)
    monkeypatch.setattr(base, "PARALLEL_MIN", 1)  # 340k elements: below the default threshold
    old = base.get_num_threads()
    try:
        p1, s1 = run(1)
        p4, s4 = run(4)
    finally:
        base.set_num_threads(old)
    for n in shapes:
        assert np.array_equal(p1[n], p4[n])
        for slot in s1["state"][n]:
            assert np.array_equal(s1["state"][n][slot], s4["state"][n][slot])


def test_threaded_finiteness_check_names_the_parameter_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(base, "PARALLEL_MIN", 1)
    old = base.get_num_threads()
    base.set_num_threads(2)
    try:
        params = {"a": np.ones(100), "b": np.ones(100)}
        grads = {"a": np.ones(100), "b": np.ones(100)}
        grads["b"][73] = np.nan
        opt = Adam()
        with pytest.raises(FloatingPointError, match="'b'"):
            opt.update(params, grads)
        assert opt.t == 0 and np.array_equal(params["a"], np.ones(100))
    finally:
        base.set_num_threads(old)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="number of threads"):
        base.set_num_threads(bad)


def test_split_balances_work_across_workers():
    jobs = [(None, None, None, 0, 10)] * 7
    groups = base._split(jobs, 3)
    assert len(groups) == 3 and sum(len(g) for g in groups) == 7
    assert max(len(g) for g in groups) - min(len(g) for g in groups) <= 1
    assert base._split(jobs, 1) == [jobs]


def test_read_only_parameter_is_rejected_before_anything_changes():
    params = {"a": np.ones(5), "b": np.ones(5)}
    params["b"].flags.writeable = False
    opt = Adam()
    with pytest.raises(ValueError, match="parameter 'b' is read-only"):
        opt.update(params, {"a": np.ones(5), "b": np.ones(5)})
    assert opt.t == 0 and opt.state == {} and np.array_equal(params["a"], np.ones(5))


@pytest.mark.parametrize("raw", ["auto", "0", "-2", "1.5"])
def test_bad_thread_count_in_the_environment_names_the_variable(raw, monkeypatch):
    monkeypatch.setenv("ADAMLAB_NUM_THREADS", raw)
    with pytest.raises(ValueError, match="ADAMLAB_NUM_THREADS must be a positive integer"):
        base._threads_from_env()
    monkeypatch.setenv("ADAMLAB_NUM_THREADS", "3")
    assert base._threads_from_env() == 3


# ============================================================================ restores (issue 11)

from adamlab.optim import StateError  # noqa: E402

#: The slots that are averages or sums of g² (or of |g|): never negative in a real run.
NONNEGATIVE = {"SGD": (), "Momentum": (), "Nesterov": (), "AdaGrad": ("sum_sq",), "RMSProp": ("v",),
               "AdaDelta": ("E_g2", "E_dx2"), "Adam": ("v",), "AdaMax": ("u",),
               "AMSGrad": ("v", "v_hat")}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_nonnegative_slots_are_the_second_moments(cls):
    assert cls.nonnegative_slots == NONNEGATIVE[cls.__name__]


def _untouched(opt):
    return opt.t == 0 and opt.state == {}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1e-3])
def test_load_state_dict_rejects_moments_no_run_can_produce(name, bad):
    make = CONFIGS[name]
    saved = run_and_save(make(), 3)
    for slot in make().slots:
        broken = copy.deepcopy(saved)
        broken["state"]["w"][slot][1, 2] = bad
        receiver = make()
        if bad == -1e-3 and slot not in receiver.nonnegative_slots:
            receiver.load_state_dict(broken)  # a first moment or a velocity may be negative
            continue
        what = "negative entries" if bad == -1e-3 else "non-finite entries"
        with pytest.raises(StateError, match=rf"state '{slot}' of parameter 'w' has {what}"):
            receiver.load_state_dict(broken)
        assert _untouched(receiver)


def test_load_state_dict_rejects_a_t_with_no_state_behind_it():
    adam = Adam()
    saved = run_and_save(adam, 4)
    with pytest.raises(StateError, match=r"t=4 but no parameter state"):
        Adam().load_state_dict({**saved, "state": {}})
    # Accepting it, the next step would be α·√(1−β2⁵)/(1−β1⁵)·(1−β1)/√(1−β2) ≈ 0.00055, not α.
    opt = Adam()
    opt.t = 4  # what the unchecked load did
    p = {"x": np.zeros(1)}
    opt.update(p, {"x": np.ones(1)})
    assert abs(p["x"][0]) == pytest.approx(0.000545, rel=1e-3)
    zeros = {n: {k: np.zeros_like(a) for k, a in s.items()} for n, s in saved["state"].items()}
    Adam().load_state_dict({**saved, "state": zeros})  # zero moments after 4 steps: g was 0
    receiver = Adam()
    with pytest.raises(StateError, match=r"t=0 but state 'm' of parameter 'w' is not zero"):
        receiver.load_state_dict({**saved, "t": 0})
    assert _untouched(receiver)
    fresh = Adam().state_dict()
    Adam().load_state_dict(fresh)  # t = 0 and no state: a fresh optimizer
    avg = TemporalAverage(0.9)
    avg.update({"x": np.ones(3)})
    with pytest.raises(StateError, match=r"t=1 but no parameter state"):
        TemporalAverage(0.9).load_state_dict({**avg.state_dict(), "state": {}})


def test_load_state_dict_refuses_other_hyperparameters():
    params = {"x": np.ones(3)}
    avg = TemporalAverage(beta=0.9)
    avg.update(params)
    saved = avg.state_dict()
    other = TemporalAverage(beta=0.5)
    with pytest.raises(StateError, match=r"beta: 0\.9 recorded, 0\.5 here.*TemporalAverage\(\*\*"):
        other.load_state_dict(saved)
    assert _untouched(other)
    same = TemporalAverage(**saved["hyperparams"])
    same.load_state_dict(saved)
    assert np.array_equal(same.average()["x"], np.ones(3))  # not the 0.2 of a silent β = 0.5

    saved = run_and_save(Adam(lr=0.01), 2)
    for kwargs in ({"lr": 0.02}, {"beta2": 0.99}, {"eps": 0.0}, {"bias_correction": False},
                   {"lr": 0.01, "beta1_decay": 0.9}):
        with pytest.raises(StateError, match="other hyper-parameters"):
            Adam(**{"lr": 0.01, **kwargs}).load_state_dict(saved)
    Adam(lr=0.01).load_state_dict(saved)
    with pytest.raises(StateError, match="no 'hyperparams' entry"):
        Adam(lr=0.01).load_state_dict({k: v for k, v in saved.items() if k != "hyperparams"})
    # Schedules compare with ==: inverse_sqrt by value, a function by identity.
    saved = run_and_save(Adam(lr=inverse_sqrt(0.1)), 2)
    Adam(lr=inverse_sqrt(0.1)).load_state_dict(saved)
    with pytest.raises(StateError, match=r"lr: inverse_sqrt\(alpha=0\.1\) recorded"):
        Adam(lr=inverse_sqrt(0.2)).load_state_dict(saved)

    def schedule(t):
        return 0.1 / t

    saved = run_and_save(Adam(lr=schedule), 2)
    Adam(lr=schedule).load_state_dict(saved)
    with pytest.raises(StateError, match="lr: "):
        Adam(lr=lambda t: 0.1 / t).load_state_dict(saved)


# ============================================================================ rejected before any write


def _snapshot(opt, params):
    return copy.deepcopy(params), copy.deepcopy(opt.state_dict())


def _assert_unchanged(opt, params, snap):
    before, sd = snap
    assert opt.t == sd["t"]
    for k in params:
        assert np.array_equal(params[k], before[k])
    assert set(opt.state) == set(sd["state"])
    for k, slots in sd["state"].items():
        for slot, a in slots.items():
            assert np.array_equal(opt.state[k][slot], a)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_ndarray_subclasses_are_rejected_before_any_write(cls):
    # 786,432 float32 entries: three chunks. Before the check, np.matrix broke the rule part-way.
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal(1000).astype(np.float32),
              "w": rng.standard_normal((768, 1024)).astype(np.float32)}
    opt = cls()
    opt.update(params, {k: np.ones_like(v) for k, v in params.items()})
    snap = _snapshot(opt, params)
    grads = {"a": np.ones(1000, np.float32), "w": np.asmatrix(np.ones((768, 1024), np.float32))}
    with pytest.raises(TypeError, match=r"grad 'w' is a numpy\.matrix, not a plain numpy\.ndarray"):
        opt.update(params, grads)
    _assert_unchanged(opt, params, snap)
    as_matrix = {"a": params["a"], "w": np.asmatrix(params["w"])}  # shares memory with params["w"]
    with pytest.raises(TypeError, match=r"parameter 'w' is a numpy\.matrix"):
        opt.update(as_matrix, {k: np.ones(v.shape, np.float32) for k, v in as_matrix.items()})
    _assert_unchanged(opt, params, snap)
    masked = {"a": params["a"], "w": np.ma.masked_array(params["w"])}
    with pytest.raises(TypeError, match=r"parameter 'w' is a numpy\.ma\.MaskedArray"):
        opt.update(masked, {k: np.ones(v.shape, np.float32) for k, v in masked.items()})
    _assert_unchanged(opt, params, snap)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_an_array_under_two_names_is_rejected(cls):
    x = np.ones(6)
    opt = cls()
    with pytest.raises(ValueError, match=r"parameters 'a' and 'b' share memory"):
        opt.update({"a": x, "b": x}, {"a": np.ones(6), "b": np.ones(6)})
    with pytest.raises(ValueError, match=r"parameters 'a' and 'b' share memory"):
        opt.update({"a": x[:4], "b": x[3:]}, {"a": np.ones(4), "b": np.ones(3)})
    with pytest.raises(ValueError, match=r"share memory"):
        opt.update({"a": x.reshape(2, 3), "b": x.reshape(3, 2).T},
                   {"a": np.ones((2, 3)), "b": np.ones((2, 3))})
    y = np.ones(6)
    with pytest.raises(ValueError, match=r"grad 'b' shares memory with parameter 'a'"):
        opt.update({"a": x, "b": y}, {"a": np.ones(6), "b": x})
    with pytest.raises(ValueError, match=r"grad 'a' shares memory with parameter 'a'"):
        opt.update({"a": x, "b": y}, {"a": x[::-1], "b": np.ones(6)})
    assert _untouched(opt) and np.array_equal(x, np.ones(6)) and np.array_equal(y, np.ones(6))


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_disjoint_views_and_one_gradient_for_two_parameters_are_accepted(cls):
    # x[::2] and x[1::2] have overlapping byte ranges but no common element; a gradient may serve
    # two parameters (it is only read). Both give what separate arrays give.
    x = np.arange(1.0, 9.0)
    g = np.linspace(-1.0, 1.0, 4)
    shared, separate = cls(), cls()
    sep = {"a": x[::2].copy(), "b": x[1::2].copy()}
    for _ in range(3):
        shared.update({"a": x[::2], "b": x[1::2]}, {"a": g, "b": g})
        separate.update(sep, {"a": g.copy(), "b": g.copy()})
    assert np.array_equal(x[::2], sep["a"]) and np.array_equal(x[1::2], sep["b"])


SQUARING = [AdaGrad, RMSProp, AdaDelta, Adam, AMSGrad]


def test_square_limit_is_the_largest_magnitude_with_a_finite_square():
    for dtype in (np.float32, np.float64):
        limit = dtype(base.SQUARE_LIMIT[np.dtype(dtype)])
        with np.errstate(over="ignore"):
            assert np.isfinite(limit * limit)
            above = np.nextafter(limit, dtype(np.inf))
            assert np.isinf(above * above)
    assert 1.8e19 < base.SQUARE_LIMIT[np.dtype(np.float32)] < 1.9e19


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("layout", ["small", "large", "strided", "threads"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_gradient_whose_square_overflows(cls, layout, dtype, monkeypatch):
    """Adam, AMSGrad, AdaGrad, RMSProp and AdaDelta accumulate g²: a gradient whose square
    overflows would freeze the entry (v = inf, step 0 for good), so it is refused before any write.
    The other rules take it."""
    if layout == "threads":
        monkeypatch.setattr(base, "PARALLEL_MIN", 1)
        monkeypatch.setattr(base, "_num_threads", 2)
        monkeypatch.setattr(base, "_executor", None)
    n = 10 if layout == "small" else 20_000
    limit = dtype(base.SQUARE_LIMIT[np.dtype(dtype)])
    huge = np.nextafter(limit, dtype(np.inf))
    params = {"a": np.ones(n, dtype), "b": np.ones(n, dtype)}
    grads = {"a": np.ones(n, dtype), "b": np.full(2 * n, 0.5, dtype)[::2].copy()}
    opt = cls(lr=1e-3)
    opt.update(params, grads)
    snap = _snapshot(opt, params)
    big = np.full(2 * n, 0.5, dtype)
    big[2 * (n // 2)] = -huge
    grads = {"a": np.full(n, limit), "b": big[::2] if layout == "strided" else big[::2].copy()}
    grads["a"] = grads["a"].astype(dtype)
    if cls in SQUARING:
        with pytest.raises(FloatingPointError, match=r"gradient for parameter 'b' has an entry above "
                                                     r"1\.8\de\+19 in magnitude|entry above 1\.3\de\+154"):
            opt.update(params, grads)
        _assert_unchanged(opt, params, snap)
        grads["b"][n // 2] = -limit  # the largest magnitude whose square is finite is taken
    opt.update(params, grads)
    for k in opt.state:
        for a in opt.state[k].values():
            assert np.isfinite(a).all()
    if layout == "threads":
        base._pool().shutdown(wait=True)
        monkeypatch.setattr(base, "_executor", None)


@pytest.mark.parametrize("cls", SQUARING, ids=lambda c: c.__name__)
def test_errstate_over_ignore_takes_the_overflowing_step_as_torch_does(cls):
    params = {"x": np.ones(4, np.float32)}
    grads = {"x": np.array([1.0, 2e19, -3e19, 1.0], np.float32)}
    opt = cls()
    with np.errstate(over="ignore"):
        opt.update(params, grads)
    assert opt.t == 1
    second = opt.state["x"]["E_g2" if cls is AdaDelta else cls.nonnegative_slots[0]]
    assert np.isinf(second[1:3]).all() and np.isfinite(second[[0, 3]]).all()
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="parameter 'x'"):
        opt.update(params, grads)
    assert opt.t == 1


@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_callers_errstate_raise_cannot_stop_a_step_half_written(name):
    """Tiny float32 gradients underflow in g², and an update's averages may underflow: harmless by
    design, and under np.errstate(all="raise") it must not leave a step half-written."""
    make = CONFIGS[name]
    grads = [{"w": np.full((3, 4), 1e-25, np.float32) * (k + 1), "b": np.full(5, -1e-30, np.float32)}
             for k in range(3)]
    quiet, strict = make(), make()
    p_quiet, p_strict = make_params(np.float32), make_params(np.float32)
    for g in grads:
        with np.errstate(all="ignore"):
            quiet.update(p_quiet, copy.deepcopy(g))
        with np.errstate(all="raise"):
            strict.update(p_strict, copy.deepcopy(g))
    for k in p_quiet:
        assert np.array_equal(p_quiet[k], p_strict[k])
    assert_same_state(quiet, strict)


def test_large_lr_and_hyperparameters_give_a_value_error():
    for kwargs in ({"lr": 10**400}, {"beta1": 10**400}, {"eps": -(10**400)}):
        with pytest.raises(ValueError, match=r"must be finite, got a number too large for a float "
                                             r"\(about 10\*\*\d+\)"):
            Adam(**kwargs)
    with pytest.raises(ValueError, match="alpha must be finite"):
        inverse_sqrt(10**400)
    opt = SGD(lr=lambda t: 10**400)
    with pytest.raises(ValueError, match=r"lr schedule .* at t=1"):
        opt.update({"x": np.ones(2)}, {"x": np.ones(2)})


def test_temporal_average_under_errstate_raise_is_not_half_written():
    params = {"a": np.full(3, 1e-300), "b": np.full(4, 5e-324)}  # (1 − β)·θ underflows
    quiet, strict = TemporalAverage(0.999), TemporalAverage(0.999)
    for _ in range(2):
        with np.errstate(all="ignore"):
            quiet.update(params)
        with np.errstate(all="raise"):
            strict.update(params)
    assert_same_state(quiet, strict)
