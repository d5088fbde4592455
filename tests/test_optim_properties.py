"""Property-based tests (hypothesis) of adamlab.optim: invariances, step bounds, state round trips.

Gradient sequences are drawn from a hypothesis-chosen seed with NumPy's default_rng: per-coordinate
scales from 1e-3 to 1e3, optionally sparse (entries zeroed at random after step 1), optionally
growing or shrinking geometrically over time. Runs are open loop (a fixed sequence of gradients),
so an invariance is a statement about the update rule alone.

Step bounds of §2.1 and §7.1, worked out (ε = 0, Δ_t = θ_t − θ_{t−1}, k = t − i ≥ 0):

Adam. m_t = (1−β1) Σ_i β1^k g_i and v_t = (1−β2) Σ_i β2^k g_i². Writing β1^k g_i =
(β1^k/β2^{k/2})·(β2^{k/2} g_i), Cauchy–Schwarz gives |Σ β1^k g_i| ≤ √(Σ κ^k)·√(Σ β2^k g_i²) with
κ = β1²/β2, hence the exact bound (attained by g_i ∝ (β1/β2)^k, all of one sign)
    |Δ_t| ≤ α·B_t,   B_t = (1−β1)·√(1−β2^t) / ((1−β1^t)·√(1−β2)) · √(Σ_{k=0}^{t−1} κ^k).
B_1 = 1: the first step is exactly ±α. For κ < 1 and t → ∞, B_t → (1−β1)/√((1−β2)(1−κ)), which
exceeds the paper's (1−β1)/√(1−β2) whenever β1 > 0, and exceeds the paper's "α otherwise" unless
β1 = β2 (then B_t = 1 for every t); for κ ≥ 1 (β1² ≥ β2) B_t grows without bound. So §2.1's two
bounds are not upper bounds over all gradient sequences: the counterexamples are gradients whose
magnitude grows by the factor β2/β1 per step (11 % per step for the defaults), for which the long
memory of v lags behind the short memory of m. With the defaults and t = 1000, |Δ_t| = 5.78 α
against the stated 3.16 α (``test_adam_paper_bound_counterexamples``). What does hold, and is
tested: |Δ_t| ≤ α·B_t always, with equality for the extremal sequence, and |Δ_1| = α.

AdaMax. u_t = max_i β2^k |g_i| ≥ β2^k |g_i| for every i, so |m_t| ≤ (1−β1) u_t Σ (β1/β2)^k and
    |Δ_t| ≤ α·A_t,   A_t = (1−β1)/(1−β1^t) · Σ_{k=0}^{t−1} (β1/β2)^k,
attained by g_i = β2^{−k} (all of one sign). A_1 = 1, but A_t > 1 for t ≥ 2 whenever β1 < β2:
with the defaults A_t rises to (1−β1)β2/(β2−β1) = 1.0091, so §7.1's |Δ_t| ≤ α fails by up to
0.91 %; for β1 ≥ β2 A_t grows without bound. |Δ_t| ≤ α does hold when no earlier gradient is
larger in magnitude than the current one, because then u_t ≥ |g_t| ≥ |g_i|.
"""

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adamlab.optim import (SGD, AdaDelta, AdaGrad, AdaMax, Adam, AMSGrad, Momentum, Nesterov,
                           RMSProp, TemporalAverage, inverse_sqrt)

# CI (CI=true) replays a fixed set of examples so that a run is reproducible; elsewhere hypothesis
# draws new ones each run and keeps exploring.
PROPERTY = settings(max_examples=50, deadline=None, database=None,
                    derandomize=os.environ.get("CI", "").lower() in ("1", "true"),
                    suppress_health_check=[HealthCheck.too_slow])

seeds = st.integers(min_value=0, max_value=2**32 - 1)
beta1s = st.floats(min_value=0.0, max_value=0.99)
beta2s = st.floats(min_value=0.5, max_value=0.9999)
lrs = st.floats(min_value=1e-4, max_value=1.0)
scales = st.floats(min_value=1e-3, max_value=1e3)
powers_of_two = st.integers(min_value=-30, max_value=30).map(lambda k: 2.0**k)


def gradient_sequence(seed, steps, n, sparse=False, growth=1.0, dtype=np.float64):
    """``steps`` gradients of ``n`` entries, nonzero at step 1 (so ε = 0 never divides 0 by 0)."""
    rng = np.random.default_rng(seed)
    coord_scale = 10.0 ** rng.uniform(-3, 3, size=n)
    g = rng.normal(size=(steps, n)) * coord_scale * growth ** np.arange(steps)[:, None]
    g[0][g[0] == 0] = 1.0
    if sparse:
        g[1:] *= rng.random(size=(steps - 1, n)) < 0.3
    return g.astype(dtype)


def run(opt, grads, theta0=None, name="theta"):
    """Feed the fixed sequence ``grads`` (steps, *shape) to ``opt``; return θ_0..θ_steps."""
    theta = np.zeros(grads.shape[1:], dtype=grads.dtype) if theta0 is None else theta0.copy()
    params = {name: theta}
    path = [theta.copy()]
    for g in grads:
        opt.update(params, {name: g})
        path.append(params[name].copy())
    return np.array(path)


# ---------------------------------------------------------------------------- scale invariance

SCALE_INVARIANT = {
    "Adam eps=0": lambda b1, b2, lr: Adam(lr=lr, beta1=b1, beta2=b2, eps=0.0),
    "AdaMax": lambda b1, b2, lr: AdaMax(lr=lr, beta1=b1, beta2=b2),
    "RMSProp eps=0": lambda b1, b2, lr: RMSProp(lr=lr, beta2=b2, eps=0.0),
    "RMSProp eps=0 momentum": lambda b1, b2, lr: RMSProp(lr=lr, beta2=b2, eps=0.0, momentum=b1),
    "RMSProp eps=0 bias-corrected": lambda b1, b2, lr: RMSProp(lr=lr, beta2=b2, eps=0.0,
                                                               bias_correction=True),
    "AdaGrad eps=0": lambda b1, b2, lr: AdaGrad(lr=lr, eps=0.0),
    "AMSGrad eps=0": lambda b1, b2, lr: AMSGrad(lr=lr, beta1=b1, beta2=b2, eps=0.0),
}


@pytest.mark.parametrize("name", sorted(SCALE_INVARIANT))
@PROPERTY
@given(seed=seeds, beta1=beta1s, beta2=beta2s, lr=lrs, c=scales, sparse=st.booleans())
def test_scale_invariance(name, seed, beta1, beta2, lr, c, sparse):
    """§2.1: scaling every gradient by c > 0 leaves the trajectory unchanged (float64 rounding).

    Each step's direction m̂/√v̂ is formed from quantities scaled by c and c², which cancel; the
    scaled run rounds differently, by a few ulps of |Δ| per step, hence the tolerance.
    """
    make = SCALE_INVARIANT[name]
    grads = gradient_sequence(seed, 25, 6, sparse=sparse)
    base = run(make(beta1, beta2, lr), grads)
    scaled = run(make(beta1, beta2, lr), c * grads)
    np.testing.assert_allclose(scaled, base, rtol=1e-11, atol=1e-12 * lr * len(grads))


@pytest.mark.parametrize("name", sorted(SCALE_INVARIANT))
@PROPERTY
@given(seed=seeds, beta1=beta1s, beta2=beta2s, c=powers_of_two)
def test_scale_invariance_is_exact_for_powers_of_two(name, seed, beta1, beta2, c):
    """Scaling by 2^k changes no rounding at all, so the trajectories are bit-identical."""
    make = SCALE_INVARIANT[name]
    grads = gradient_sequence(seed, 20, 5)
    np.testing.assert_array_equal(run(make(beta1, beta2, 0.01), c * grads),
                                  run(make(beta1, beta2, 0.01), grads))


@PROPERTY
@given(seed=seeds, lr=lrs, c=scales, momentum=st.floats(0.0, 0.99))
def test_sgd_and_momentum_are_not_scale_invariant_their_displacement_scales(seed, lr, c, momentum):
    """SGD and heavy ball are linear in g: θ_t(c·g) − θ_0 = c·(θ_t(g) − θ_0)."""
    grads = gradient_sequence(seed, 20, 5)
    theta0 = np.random.default_rng(seed + 1).normal(size=5)
    for make in (lambda: SGD(lr=lr), lambda: Momentum(lr=lr, momentum=momentum),
                 lambda: Nesterov(lr=lr, momentum=momentum)):
        base = run(make(), grads, theta0) - theta0
        scaled = run(make(), c * grads, theta0) - theta0
        np.testing.assert_allclose(scaled, c * base, rtol=1e-9,
                                   atol=1e-12 * (1 + c * np.abs(base).max()))
    if not math.isclose(c, 1.0, rel_tol=1e-3):
        sgd = run(SGD(lr=lr), grads, theta0)
        assert not np.allclose(run(SGD(lr=lr), c * grads, theta0), sgd, rtol=1e-6, atol=0)


def test_eps_breaks_scale_invariance_for_small_gradients():
    """With ε > 0 the invariance holds only while √v̂ ≫ ε (so the properties above can fail)."""
    grads = gradient_sequence(7, 20, 5)
    base = run(Adam(lr=0.01), grads)
    tiny = run(Adam(lr=0.01), 1e-9 * grads)
    assert np.abs(tiny - base).max() > 1e-3


# ---------------------------------------------------------------------------- step bounds

def adam_exact_bound(beta1, beta2, t):
    """B_t: the supremum of |m̂_t/√v̂_t| over all gradient sequences (module docstring)."""
    kappa = beta1**2 / beta2
    geometric = float(t) if kappa == 1.0 else (1 - kappa**t) / (1 - kappa)
    return ((1 - beta1) * math.sqrt(1 - beta2**t) / ((1 - beta1**t) * math.sqrt(1 - beta2))
            * math.sqrt(geometric))


def adam_paper_bound(beta1, beta2):
    """§2.1 as stated: α(1−β1)/√(1−β2) if (1−β1) > √(1−β2), else α (returned in units of α)."""
    return (1 - beta1) / math.sqrt(1 - beta2) if (1 - beta1) > math.sqrt(1 - beta2) else 1.0


def adamax_exact_bound(beta1, beta2, t):
    """A_t: the supremum of |Δ_t|/α for AdaMax over all gradient sequences (module docstring)."""
    r = beta1 / beta2
    geometric = float(t) if r == 1.0 else (1 - r**t) / (1 - r)
    return (1 - beta1) / (1 - beta1**t) * geometric


def extremal_sequence(ratio, steps):
    """g_i = ratio^(steps − i), i = 1..steps: the sequence that attains the bound at t = steps.

    Entries are floored at 1e-150 (for ratio ≈ 0 the exact sequence starts with zeros, and ε = 0
    would divide 0 by 0 at step 1); the floor changes the attained value by far less than 1e-10.
    """
    return np.maximum(ratio ** np.arange(steps - 1, -1, -1, dtype=np.float64), 1e-150)[:, None]


@PROPERTY
@given(seed=seeds, beta1=beta1s, beta2=beta2s, lr=lrs, sparse=st.booleans(),
       growth=st.sampled_from([0.5, 0.9, 1.0, 1.001, 1.05, 1.2]))
def test_adam_step_never_exceeds_exact_bound(seed, beta1, beta2, lr, sparse, growth):
    grads = gradient_sequence(seed, 40, 6, sparse=sparse, growth=growth)
    steps = np.abs(np.diff(run(Adam(lr=lr, beta1=beta1, beta2=beta2, eps=0.0), grads), axis=0))
    bounds = np.array([adam_exact_bound(beta1, beta2, t) for t in range(1, len(grads) + 1)])
    assert np.all(steps <= lr * bounds[:, None] * (1 + 1e-12))


@PROPERTY
@given(beta1=beta1s, beta2=beta2s, lr=lrs, steps=st.integers(1, 400))
def test_adam_exact_bound_is_attained(beta1, beta2, lr, steps):
    grads = extremal_sequence(beta1 / beta2, steps)
    delta = np.diff(run(Adam(lr=lr, beta1=beta1, beta2=beta2, eps=0.0), grads), axis=0)
    np.testing.assert_allclose(abs(delta[-1, 0]), lr * adam_exact_bound(beta1, beta2, steps),
                               rtol=1e-10)


@PROPERTY
@given(seed=seeds, beta1=beta1s, beta2=beta2s, lr=lrs)
def test_adam_first_step_is_exactly_lr(seed, beta1, beta2, lr):
    """At t = 1, m̂_1 = g_1 and v̂_1 = g_1², so Δ_1 = −α·sign(g_1): neither §2.1 case is tight."""
    g = gradient_sequence(seed, 1, 8)
    delta = run(Adam(lr=lr, beta1=beta1, beta2=beta2, eps=0.0), g)[1]
    np.testing.assert_allclose(delta, -lr * np.sign(g[0]), rtol=4e-15)


def test_adam_paper_bound_counterexamples():
    """§2.1's bounds fail for gradients that grow by β2/β1 per step (documented, not weakened).

    Numbers (α = 1, ε = 0, the exact values come from adam_exact_bound and are reached by Adam):
    - defaults β1 = 0.9, β2 = 0.999 (case (1−β1) > √(1−β2), stated bound 3.162):
      B_t first exceeds it at t = 210; |Δ_1000| = 5.78, and the supremum over t is 7.27;
    - β1 = 0.99, β2 = 0.999 (case "α otherwise", stated bound 1): |Δ_1000| = 1.83 (sup 2.30);
    - β1 = 0.9, β2 = 0.99, where (1−β1) = √(1−β2) and §2.1 claims |m̂/√v̂| < 1: |Δ_1| = 1 exactly
      for any g_1 ≠ 0, and |Δ_300| = 2.29 (sup 2.35);
    - β1 = 0.9, β2 = 0.5 (β1² > β2): |Δ_60| = 3.47·10^5, unbounded in t.
    """
    cases = [  # beta1, beta2, t, |Δ_t|/α expected (3 significant digits)
        (0.9, 0.999, 1000, 5.78),
        (0.99, 0.999, 1000, 1.83),
        (0.9, 0.99, 300, 2.29),
        (0.9, 0.5, 60, 3.47e5),
    ]
    for beta1, beta2, t, expected in cases:
        grads = extremal_sequence(beta1 / beta2, t)
        delta = abs(np.diff(run(Adam(lr=1.0, beta1=beta1, beta2=beta2, eps=0.0), grads),
                            axis=0)[-1, 0])
        assert delta == pytest.approx(expected, rel=5e-3)
        assert delta == pytest.approx(adam_exact_bound(beta1, beta2, t), rel=1e-10)
        assert delta > 1.5 * adam_paper_bound(beta1, beta2), (beta1, beta2, t, delta)
    # The paper's (1−β1) = √(1−β2) claim |m̂_t/√v̂_t| < 1 already fails at t = 1 (equality).
    first = np.diff(run(Adam(lr=1.0, beta1=0.9, beta2=0.99, eps=0.0), np.array([[3.0]])), axis=0)
    assert abs(first[0, 0]) == pytest.approx(1.0, rel=1e-15)
    # Supremum over t for the defaults, (1−β1)/√((1−β2)(1−β1²/β2)) = 7.27: the closed-form limit
    # and the helper's B_t agree.
    sup = 0.1 / math.sqrt(0.001 * (1 - 0.81 / 0.999))
    assert adam_exact_bound(0.9, 0.999, 10**6) == pytest.approx(sup, rel=1e-9)
    # Adam itself, with the defaults, first steps beyond the stated 0.1/√0.001 = 3.162 at t = 210.
    for t, beyond in ((209, False), (210, True)):
        grads = extremal_sequence(0.9 / 0.999, t)
        delta = abs(np.diff(run(Adam(lr=1.0, eps=0.0), grads), axis=0)[-1, 0])
        assert (delta > 0.1 / math.sqrt(0.001)) == beyond, (t, delta)


@PROPERTY
@given(seed=seeds, beta=st.floats(0.5, 0.999), lr=lrs, sparse=st.booleans(),
       growth=st.sampled_from([0.5, 1.0, 1.05, 2.0]))
def test_adam_step_at_most_lr_for_equal_betas(seed, beta, lr, sparse, growth):
    """β1 = β2: Cauchy–Schwarz with equal weights gives |m̂_t/√v̂_t| ≤ 1 (B_t = 1) for every t."""
    assert all(adam_exact_bound(beta, beta, t) == pytest.approx(1.0, rel=1e-9)
               for t in (1, 2, 10, 1000))
    grads = gradient_sequence(seed, 40, 6, sparse=sparse, growth=growth)
    steps = np.abs(np.diff(run(Adam(lr=lr, beta1=beta, beta2=beta, eps=0.0), grads), axis=0))
    assert np.all(steps <= lr * (1 + 1e-12))


@PROPERTY
@given(seed=seeds, beta1=beta1s, beta2=beta2s, lr=lrs, sparse=st.booleans(),
       growth=st.sampled_from([0.5, 0.9, 1.0, 1.001, 1.05, 1.2]))
def test_adamax_step_never_exceeds_exact_bound(seed, beta1, beta2, lr, sparse, growth):
    grads = gradient_sequence(seed, 40, 6, sparse=sparse, growth=growth)
    steps = np.abs(np.diff(run(AdaMax(lr=lr, beta1=beta1, beta2=beta2), grads), axis=0))
    bounds = np.array([adamax_exact_bound(beta1, beta2, t) for t in range(1, len(grads) + 1)])
    assert np.all(steps <= lr * bounds[:, None] * (1 + 1e-12))


@PROPERTY
@given(seed=seeds, beta1=beta1s, beta2=beta2s, lr=lrs)
def test_adamax_step_at_most_lr_when_current_gradient_is_largest(seed, beta1, beta2, lr):
    """§7.1's |Δ_t| ≤ α holds when |g_i| ≤ |g_t| for all i ≤ t (then u_t ≥ |g_i|)."""
    rng = np.random.default_rng(seed)
    magnitudes = np.cumsum(rng.uniform(0.0, 1.0, size=(30, 4)), axis=0) + 0.1  # nondecreasing
    grads = magnitudes * rng.choice([-1.0, 1.0], size=(30, 4))
    steps = np.abs(np.diff(run(AdaMax(lr=lr, beta1=beta1, beta2=beta2), grads), axis=0))
    assert np.all(steps <= lr * (1 + 1e-12))


@PROPERTY
@given(beta1=beta1s, beta2=beta2s, lr=lrs, steps=st.integers(1, 400))
def test_adamax_exact_bound_is_attained(beta1, beta2, lr, steps):
    grads = extremal_sequence(1 / beta2, steps)
    delta = np.diff(run(AdaMax(lr=lr, beta1=beta1, beta2=beta2), grads), axis=0)
    np.testing.assert_allclose(abs(delta[-1, 0]), lr * adamax_exact_bound(beta1, beta2, steps),
                               rtol=1e-10)


def test_adamax_paper_bound_counterexample():
    """§7.1 claims |Δ_t| ≤ α; with the defaults a gradient that shrinks by the factor β2 = 0.999 each
    step (g_i = β2^−(t−i), so that every past |g_i| decays in u_t to exactly the current one) gives
    |Δ_200| = 1.0091 α (supremum (1−β1)β2/(β2−β1) = 1.00909 α); with β1 = 0.9, β2 = 0.5 (allowed:
    β2 ∈ [0, 1)) a gradient halving each step gives |Δ_30| = 5.94·10^6 α."""
    grads = extremal_sequence(1 / 0.999, 200)
    delta = abs(np.diff(run(AdaMax(lr=1.0), grads), axis=0)[-1, 0])
    assert delta == pytest.approx(0.1 * 0.999 / (0.999 - 0.9), rel=1e-6)
    assert delta > 1.009
    grads = extremal_sequence(2.0, 30)
    delta = abs(np.diff(run(AdaMax(lr=1.0, beta1=0.9, beta2=0.5), grads), axis=0)[-1, 0])
    assert delta == pytest.approx(adamax_exact_bound(0.9, 0.5, 30), rel=1e-10)
    assert delta == pytest.approx(5.94e6, rel=5e-3)


# ---------------------------------------------------------------------------- element-wise rules

ALL_OPTIMIZERS = {
    "SGD": lambda: SGD(lr=0.1),
    "Momentum": lambda: Momentum(lr=0.05, momentum=0.9),
    "Nesterov": lambda: Nesterov(lr=0.05, momentum=0.9),
    "AdaGrad": lambda: AdaGrad(lr=0.1),
    "RMSProp": lambda: RMSProp(lr=0.01, beta2=0.9),
    "RMSProp momentum bias-corrected": lambda: RMSProp(lr=0.01, beta2=0.99, momentum=0.9,
                                                       bias_correction=True),
    "AdaDelta": lambda: AdaDelta(),
    "Adam": lambda: Adam(lr=0.01),
    "Adam schedule beta1_decay": lambda: Adam(lr=inverse_sqrt(0.05), beta1_decay=0.99),
    "Adam no bias correction": lambda: Adam(lr=0.01, bias_correction=False),
    "AdaMax": lambda: AdaMax(),
    "AMSGrad": lambda: AMSGrad(),
    "AMSGrad bias-corrected": lambda: AMSGrad(bias_correction=True),
}


@pytest.mark.parametrize("name", sorted(ALL_OPTIMIZERS))
@PROPERTY
@given(seed=seeds, n=st.integers(2, 40), data=st.data())
def test_elementwise_independence(name, seed, n, data):
    """Every rule acts element by element: one concatenated array, its pieces under separate
    names, and a permutation of it give bit-identical results (no reductions across entries)."""
    make = ALL_OPTIMIZERS[name]
    split = data.draw(st.integers(1, n - 1), label="split")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    grads = gradient_sequence(seed, 12, n, sparse=True)
    theta0 = rng.normal(size=n)
    whole = run(make(), grads, theta0)
    permuted = run(make(), grads[:, perm], theta0[perm])
    np.testing.assert_array_equal(permuted, whole[:, perm])

    opt = make()
    pieces = {"a": theta0[:split].copy(), "b": theta0[split:].copy()}
    for g in grads:
        opt.update(pieces, {"a": g[:split].copy(), "b": g[split:].copy()})
    np.testing.assert_array_equal(np.concatenate([pieces["a"], pieces["b"]]), whole[-1])

    shaped = run(make(), grads.reshape(len(grads), 1, n), theta0.reshape(1, n))
    np.testing.assert_array_equal(shaped.reshape(whole.shape), whole)


@pytest.mark.parametrize("name", ["Adam", "AdaMax", "RMSProp", "SGD"])
def test_elementwise_independence_across_chunks(name):
    """Arrays larger than any internal chunk, and large enough to be split across worker threads
    (here 2**20 + 12 345 entries, odd), agree bit for bit with updates of small pieces."""
    make = ALL_OPTIMIZERS[name]
    n = 2**20 + 12_345
    grads = gradient_sequence(3, 3, n, sparse=True)
    theta0 = np.random.default_rng(4).normal(size=n)
    whole = run(make(), grads, theta0)[-1]
    cut = [0, 1, 77_777, 524_289, 1_000_000, n]
    for lo, hi in zip(cut[:-1], cut[1:]):
        np.testing.assert_array_equal(run(make(), grads[:, lo:hi], theta0[lo:hi])[-1],
                                      whole[lo:hi])


# ---------------------------------------------------------------------------- state round trip

@pytest.mark.parametrize("name", sorted(ALL_OPTIMIZERS))
@PROPERTY
@given(seed=seeds, data=st.data())
def test_state_dict_round_trip_is_bit_identical(name, seed, data):
    """Stop at a random step k, save, keep training the old object (the save must not change),
    restore into a fresh object, continue: identical to a run that never stopped."""
    make = ALL_OPTIMIZERS[name]
    steps = 15
    k = data.draw(st.integers(0, steps), label="split")
    grads = gradient_sequence(seed, steps, 7, sparse=True)
    theta0 = np.random.default_rng(seed).normal(size=(7,))
    uninterrupted = run(make(), grads, theta0)

    first = make()
    params = {"theta": theta0.copy()}
    for g in grads[:k]:
        first.update(params, {"theta": g})
    saved = first.state_dict()
    saved_params = params["theta"].copy()
    for g in grads[k:]:  # the saved state must not share memory with the live one
        first.update(params, {"theta": g * 3.0 + 1.0})

    second = make()
    second.load_state_dict(saved)
    assert second.t == k
    for slots in saved["state"].values():  # loading copies too: the caller's dict stays theirs
        for array in slots.values():
            array.fill(7.0)
    resumed = {"theta": saved_params}
    for g in grads[k:]:
        second.update(resumed, {"theta": g})
    assert second.t == steps
    np.testing.assert_array_equal(resumed["theta"], uninterrupted[-1])


@PROPERTY
@given(seed=seeds, data=st.data())
def test_temporal_average_state_round_trip(seed, data):
    steps = 12
    k = data.draw(st.integers(0, steps), label="split")
    thetas = np.random.default_rng(seed).normal(size=(steps, 5))
    whole = TemporalAverage(beta=0.9)
    for theta in thetas:
        whole.update({"theta": theta.copy()})
    first = TemporalAverage(beta=0.9)
    for theta in thetas[:k]:
        first.update({"theta": theta.copy()})
    saved = first.state_dict()
    for theta in thetas[k:]:
        first.update({"theta": theta + 5.0})
    second = TemporalAverage(beta=0.9)
    second.load_state_dict(saved)
    for slots in saved["state"].values():
        for array in slots.values():
            array.fill(7.0)
    for theta in thetas[k:]:
        second.update({"theta": theta.copy()})
    np.testing.assert_array_equal(second.average()["theta"], whole.average()["theta"])


# ---------------------------------------------------------------------------- float32 vs float64

# Relative rounding of float32 is 6e-8. Per step, m, v and the ratio m̂/(√v̂ + ε) pick up a few
# ulps relative to the magnitudes involved; θ itself rounds by 6e-8·|θ| per step. Bound per step:
# 1e-5 times the largest float64 step (covers the rule, including cancellation in m, where the
# error is relative to |g| rather than to |m|) plus 2.4e-7·|θ|, accumulated over the steps taken.
@pytest.mark.parametrize("name", sorted(ALL_OPTIMIZERS))
@PROPERTY
@given(seed=seeds)
def test_float32_agrees_with_float64(name, seed):
    make = ALL_OPTIMIZERS[name]
    steps = 20
    grads32 = gradient_sequence(seed, steps, 8, dtype=np.float32)
    theta32 = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    opt32 = make()
    path32 = run(opt32, grads32, theta32)
    path64 = run(make(), grads32.astype(np.float64), theta32.astype(np.float64))
    assert path32.dtype == np.float32
    for slot_arrays in opt32.state_dict()["state"].values():
        assert all(a.dtype == np.float32 for a in slot_arrays.values())
    largest_step = np.abs(np.diff(path64, axis=0)).max()
    t = np.arange(steps + 1)[:, None]
    tol = t * (1e-5 * largest_step + 2.4e-7 * np.abs(path64).max())
    assert np.all(np.abs(path32 - path64) <= tol), np.abs(path32 - path64).max()
