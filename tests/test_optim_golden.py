"""Step-by-step agreement of adamlab.optim with independent reference trajectories.

Golden file: tests/data/golden_torch.npz, made by tests/data/make_golden.py with torch 2.13.0
(CPU, float64, ``foreach=False``). torch is not needed here: the problem (its seeded arrays are in
the file) and its gradient function come from make_golden.py, which imports torch only when run.
Every case is replayed in closed loop: our optimizer receives g_t = ∇f(θ_{t−1}) + σ ξ_t evaluated at
OUR previous iterate, so a discrepancy in one step feeds every later step.

Tolerance (float64): rtol = 1e-12, atol = 1e-13 on every iterate (|θ| is of order 1). It is not 0
because the two libraries evaluate the same formulas in different orders (torch computes
m ← m + (1−β1)(g − m) with lerp, divides √v by √(1−β2^t) before adding ε, fuses θ − c·m/d in
addcdiv; our code follows the paper's lines), and each operation rounds at 1.1e-16. Over 100
closed-loop steps the measured differences stay below 1e-15 (largest: 8.9e-16, Nesterov), so the
tolerance leaves a margin of about 100 for other BLAS/CPU combinations; any real discrepancy (ε inside instead of
outside the root, t off by one, a missing bias correction, a momentum convention that differs)
moves iterates by 1e-4 or more, which ``test_tolerance_separates_near_misses`` demonstrates.

How torch's conventions map to ours (worked out, then confirmed by these tests):
- Momentum: torch SGD(momentum=μ, dampening=0) keeps b ← μ b + g, θ ← θ − α b. With v = −α b
  and a constant α this is v ← μ v − α g, θ ← θ + v (Sutskever et al. 2013, eq. 1).
- Nesterov: torch nesterov=True does b ← μ b + g, θ ← θ − α (g + μ b). Let φ = θ + μ v be
  Sutskever's look-ahead point (eq. 2 evaluates the gradient there). Then
  φ_t = θ_{t−1} + v_t + μ v_t = φ_{t−1} − μ v_{t−1} + (1 + μ) v_t = φ_{t−1} + μ v_t − α g_t,
  using v_t = μ v_{t−1} − α g_t. With v = −α b this is torch's update, and torch evaluates g at
  the point it stores. So torch's parameter IS the look-ahead point φ, which is the point our
  Nesterov keeps in ``params`` (φ_0 = θ_0 because v_0 = 0): the iterates are directly comparable.
- AdaGrad: torch Adagrad(lr_decay=0, initial_accumulator_value=0): s ← s + g², θ ← θ − α g/(√s + ε).
- RMSProp: torch RMSprop(alpha=β2, centered=False) puts ε outside the root like ours. With
  momentum μ torch does buf ← μ buf + g/(√v + ε), θ ← θ − α buf: with velocity = −α buf this is
  velocity ← μ velocity − α g/(√v + ε), θ ← θ + velocity (Graves 2013).
- AdaDelta: torch Adadelta is Zeiler's Algorithm 1 with RMS[y] = √(E[y²] + ε), followed by
  θ ← θ − lr·Δx where E[Δx²] accumulates the unscaled Δx. With lr = 1 (Zeiler's algorithm) there
  is nothing to choose; the lr = 0.5 case pins that convention for lr ≠ 1.
- Adam: torch Adam is Algorithm 1 (ε added to √v̂_t). inverse_sqrt(α) is replayed in torch by
  setting the group's lr to α/√t before step t (what LambdaLR would do).
- AMSGrad(bias_correction=True) is torch Adam(amsgrad=True): v̂ ← max(v̂, v) on raw v, then the
  two bias corrections.
- AdaMax: torch Adamax computes u ← max(β2 u, |g| + ε); with eps = 0 it is Algorithm 2.

Not comparable with torch, so compared here with naive transcriptions written in this file:
AMSGrad in its default Reddi et al. (2018) form (no bias correction at all; torch always
bias-corrects), Adam(bias_correction=False), Adam(beta1_decay=λ) with inverse_sqrt (Theorem 4.1's
setting) and RMSProp(bias_correction=True) (torch has no such switches), and TemporalAverage (torch
has no exponential parameter average with the §7.2 bias correction;
torch.optim.swa_utils.AveragedModel does not divide by 1 − β^t). Nesterov is also checked against
a literal transcription of Sutskever et al. eq. (2), gradient taken at θ + μ v.
"""

import importlib.util
import json
import math
import pathlib

import numpy as np
import pytest

import adamlab.optim as optim
from _blas_bounds import assert_within, gamma, product_bound

DATA = pathlib.Path(__file__).parent / "data"
GOLDEN = DATA / "golden_torch.npz"
REGENERATE = "python tests/data/make_golden.py in a venv with torch==2.13.0 (see its docstring)"

RTOL64, ATOL64 = 1e-12, 1e-13


def _load_make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_golden = _load_make_golden()
CASE_NAMES = [case[0] for case in make_golden.CASES]


@pytest.fixture(scope="module")
def golden():
    if not GOLDEN.exists():
        pytest.fail(f"{GOLDEN} is missing; regenerate it with {REGENERATE}")
    with np.load(GOLDEN, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def problem(golden):
    return {key[len("problem__"):]: value for key, value in golden.items()
            if key.startswith("problem__")}


def _case(golden, name):
    try:
        config = json.loads(str(golden[f"{name}__config"][0]))
        return config, golden[f"{name}__theta"], golden[f"{name}__grads"]
    except KeyError:
        pytest.fail(f"case {name!r} is not in {GOLDEN}; regenerate it with {REGENERATE}")


def _build(config):
    kwargs = dict(config["kwargs"])
    schedule = config["schedule"]
    if schedule is not None:
        assert schedule["kind"] == "inverse_sqrt"
        kwargs["lr"] = optim.inverse_sqrt(schedule["alpha"])
    return getattr(optim, config["optimizer"])(**kwargs)


def replay(opt, problem, steps, dtype=np.float64):
    """Closed-loop run of ``opt`` on the golden problem; returns θ_0..θ_steps as float64."""
    theta = problem["theta0"].astype(dtype)
    params = {"theta": theta}
    path = np.empty((steps + 1, theta.size))
    path[0] = theta
    for t in range(1, steps + 1):
        g = make_golden.gradient(params["theta"], t, problem).astype(dtype)
        opt.update(params, {"theta": g})
        assert params["theta"] is theta, "update() must modify params in place"
        assert params["theta"].dtype == dtype
        path[t] = params["theta"]
    return path


def assert_paths_close(ours, reference, rtol, atol, label):
    err = np.abs(ours - reference)
    bad = err > atol + rtol * np.abs(reference)
    if bad.any():
        t = int(np.argmax(bad.any(axis=1)))
        raise AssertionError(
            f"{label}: first disagreement at step t = {t}: ours {ours[t]} vs reference "
            f"{reference[t]} (max |error| over the run {err.max():.3e}, rtol={rtol}, atol={atol})")


def test_golden_file_is_complete_and_describes_its_problem(golden, problem):
    meta = json.loads(str(golden["meta"][0]))
    assert meta["cases"] == CASE_NAMES, f"stale golden file; regenerate it with {REGENERATE}"
    fresh = make_golden.make_problem()
    for key, value in fresh.items():
        np.testing.assert_array_equal(problem[key], value, err_msg=f"problem array {key}")


@pytest.mark.parametrize("name", CASE_NAMES)
def test_gradient_function_matches_what_torch_was_given(golden, problem, name):
    _, thetas, grads = _case(golden, name)
    ours = np.array([make_golden.gradient(thetas[t - 1], t, problem)
                     for t in range(1, len(thetas))])
    bounds = np.array([gradient_bound(thetas[t - 1], t, problem) for t in range(1, len(thetas))])
    # the stored gradients were computed on another machine (another BLAS path): equal within
    # twice the round-off bound of one computation, whose terms may cancel
    assert_within(ours, grads, bounds, label=name)


def gradient_bound(theta, t, problem):
    """Round-off bound of one computation of make_golden.gradient: g = Aᵀ(w·tanh(Aθ − b)) +
    λθ³ + noise. z = Aθ − b is within δ = γ_{k+1}(|A||θ| + |b|) (tests/_blas_bounds.py); tanh is
    1-Lipschitz and, like the products by w and λ, rounds within a few ulps; the outer product
    and the two additions are one more sum of k + 2 terms."""
    A, b, w, lam = problem["A"], problem["b"], problem["w"], float(problem["lam"])
    z = A @ theta - b
    r = w * np.tanh(z)
    # tanh: NumPy's SIMD float64 kernels are within 4 ulp (8 u); one more u for the product by w
    dr = np.abs(w) * (product_bound(A, theta, bias=b) + gamma(10) * np.abs(np.tanh(z)))
    rest = np.abs(lam * theta**3) * (1 + gamma(4)) + np.abs(problem["noise"][t - 1])
    return np.abs(A).T @ dr + product_bound(A.T, r, bias=rest) + gamma(4) * np.abs(lam * theta**3)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_matches_torch_step_by_step_float64(golden, problem, name):
    config, thetas, _ = _case(golden, name)
    opt = _build(config)
    steps = len(thetas) - 1
    ours = replay(opt, problem, steps)
    assert opt.t == steps
    assert_paths_close(ours, thetas, RTOL64, ATOL64, f"{name} vs {config['torch']}")


# float32 against the float64 golden run. A float32 step carries relative rounding errors of a few
# times 6e-8 in m, v and θ; in closed loop they accumulate over 100 steps, and near sign changes of
# m they are relative to |g| rather than to |m|. Measured: |error| ≤ 1.03e-6·(|θ| + 0.1) over all
# Adam cases (largest absolute error 5.7e-7). 5e-6 relative (about 80 float32 ulps) plus 5e-7
# absolute keeps a margin of about 5.
RTOL32, ATOL32 = 5e-6, 5e-7
ADAM_CASES = [name for name in CASE_NAMES if name.startswith("adam_")]


@pytest.mark.parametrize("name", ADAM_CASES)
def test_adam_float32_tracks_float64_golden(golden, problem, name):
    config, thetas, _ = _case(golden, name)
    opt = _build(config)
    ours = replay(opt, problem, len(thetas) - 1, dtype=np.float32)
    assert_paths_close(ours, thetas, RTOL32, ATOL32, f"{name} in float32")


def test_tolerance_separates_near_misses(golden, problem):
    """The float64 tolerance is tight enough to reject plausible wrong conventions."""
    _, adam_thetas, _ = _case(golden, "adam_big_eps")
    steps = len(adam_thetas) - 1
    near_misses = {
        "Adam without bias correction": optim.Adam(lr=0.05, beta1=0.5, beta2=0.9, eps=0.05,
                                                   bias_correction=False),
        "Adam with eps 1e-3 away": optim.Adam(lr=0.05, beta1=0.5, beta2=0.9, eps=0.05 * 1.001),
    }
    for label, opt in near_misses.items():
        err = np.abs(replay(opt, problem, steps) - adam_thetas).max()
        assert err > 1e3 * (ATOL64 + RTOL64), f"{label} is not separated (max error {err:.2e})"
    # The §2 reordering with ε̂ = ε (instead of ε·√(1 − β2^t)) is a different algorithm as well.
    theta = problem["theta0"].copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    path = [theta]
    for t in range(1, steps + 1):
        g = make_golden.gradient(theta, t, problem)
        theta, m, v = optim.adam.efficient_step(theta, g, m, v, t, 0.05, 0.5, 0.9, 0.05)
        path.append(theta)
    assert np.abs(np.array(path) - adam_thetas).max() > 1e3 * (ATOL64 + RTOL64)
    # Nesterov's look-ahead iterate is not heavy ball's iterate.
    _, nesterov, _ = _case(golden, "nesterov")
    _, momentum, _ = _case(golden, "momentum")
    assert np.abs(nesterov - momentum).max() > 1e-2


# ---------------------------------------------------------------------------------------------
# Optimizers whose conventions torch does not share: naive transcriptions, same closed loop.

def naive_path(step, problem, steps, state):
    """Closed loop with a naive rule ``step(theta, g, t, state) -> theta`` (state: a dict)."""
    theta = problem["theta0"].copy()
    path = [theta]
    for t in range(1, steps + 1):
        theta = step(theta, make_golden.gradient(theta, t, problem), t, state)
        path.append(theta)
    return np.array(path)


def amsgrad_reddi_step(lr, beta1, beta2, eps):
    """Reddi, Kale & Kumar 2018, Algorithm 2 (constant α, β1): no bias correction anywhere."""
    def step(theta, g, t, s):
        s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
        s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
        s["v_hat"] = np.maximum(s.get("v_hat", 0.0), s["v"])
        return theta - lr * s["m"] / (np.sqrt(s["v_hat"]) + eps)
    return step


def adam_uncorrected_step(lr, beta1, beta2, eps):
    """§6.4 baseline: Adam's moments without bias correction, θ ← θ − α m/(√v + ε)."""
    def step(theta, g, t, s):
        s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
        s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
        return theta - lr * s["m"] / (np.sqrt(s["v"]) + eps)
    return step


def adam_beta1_decay_step(alpha, beta1, beta2, eps, lam):
    """Theorem 4.1's setting: α_t = α/√t and β1,t = β1·λ^(t−1) in the m_t line; m̂_t keeps
    Algorithm 1's 1 − β1^t (the convention adamlab.optim.adam documents; the paper's proof does
    not say which bias correction goes with a decaying β1)."""
    def step(theta, g, t, s):
        beta1_t = beta1 * lam ** (t - 1)
        s["m"] = beta1_t * s.get("m", 0.0) + (1 - beta1_t) * g
        s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
        m_hat = s["m"] / (1 - beta1**t)
        v_hat = s["v"] / (1 - beta2**t)
        return theta - alpha / math.sqrt(t) * m_hat / (np.sqrt(v_hat) + eps)
    return step


def rmsprop_corrected_step(lr, beta2, eps):
    """RMSProp with v̂ = v/(1 − β2^t): θ ← θ − α g/(√v̂ + ε)."""
    def step(theta, g, t, s):
        s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
        return theta - lr * g / (np.sqrt(s["v"] / (1 - beta2**t)) + eps)
    return step


NAIVE_CASES = {
    "amsgrad_reddi_default": (lambda: optim.AMSGrad(lr=0.05),
                              amsgrad_reddi_step(0.05, 0.9, 0.999, 1e-8)),
    "amsgrad_reddi_fast_v": (lambda: optim.AMSGrad(lr=0.02, beta1=0.8, beta2=0.9, eps=1e-6),
                             amsgrad_reddi_step(0.02, 0.8, 0.9, 1e-6)),
    "adam_no_bias_correction": (lambda: optim.Adam(lr=0.01, beta2=0.99, bias_correction=False),
                                adam_uncorrected_step(0.01, 0.9, 0.99, 1e-8)),
    "adam_beta1_decay_inverse_sqrt": (
        lambda: optim.Adam(lr=optim.inverse_sqrt(0.1), beta1_decay=0.95),
        adam_beta1_decay_step(0.1, 0.9, 0.999, 1e-8, 0.95)),
    "rmsprop_bias_corrected": (lambda: optim.RMSProp(lr=0.01, beta2=0.99, eps=1e-8,
                                                     bias_correction=True),
                               rmsprop_corrected_step(0.01, 0.99, 1e-8)),
}


@pytest.mark.parametrize("name", sorted(NAIVE_CASES))
def test_matches_naive_transcription(problem, name):
    make_opt, step = NAIVE_CASES[name]
    steps = make_golden.STEPS
    reference = naive_path(step, problem, steps, {})
    assert_paths_close(replay(make_opt(), problem, steps), reference, RTOL64, ATOL64, name)


def test_amsgrad_reddi_form_differs_from_bias_corrected_form(problem):
    """The two AMSGrad conventions are genuinely different algorithms on this problem."""
    steps = make_golden.STEPS
    reddi = replay(optim.AMSGrad(lr=0.05), problem, steps)
    library = replay(optim.AMSGrad(lr=0.05, bias_correction=True), problem, steps)
    assert np.abs(reddi - library).max() > 1e-3


def test_nesterov_params_are_the_lookahead_of_sutskever_eq2(problem):
    """Transcribe Sutskever et al. (2013) eq. (2) literally, with the gradient taken at θ + μ v,
    and check that our Nesterov's params are that look-ahead point θ_t + μ v_t at every step."""
    lr, mu, steps = 0.02, 0.9, make_golden.STEPS
    theta = problem["theta0"].copy()
    v = np.zeros_like(theta)
    lookahead = [theta + mu * v]
    for t in range(1, steps + 1):
        v = mu * v - lr * make_golden.gradient(theta + mu * v, t, problem)
        theta = theta + v
        lookahead.append(theta + mu * v)
    ours = replay(optim.Nesterov(lr=lr, momentum=mu), problem, steps)
    assert_paths_close(ours, np.array(lookahead), RTOL64, ATOL64, "Nesterov vs eq. (2)")


@pytest.mark.parametrize("beta", [0.9, 0.999])
def test_temporal_average_matches_naive_transcription(golden, beta):
    """§7.2: θ̄_t = β θ̄_{t−1} + (1 − β) θ_t, θ̄_0 = 0, θ̂_t = θ̄_t/(1 − β^t), over torch's Adam path."""
    _, thetas, _ = _case(golden, "adam_lr")
    avg = optim.TemporalAverage(beta=beta)
    bar = np.zeros_like(thetas[0])
    for t in range(1, len(thetas)):
        avg.update({"theta": thetas[t].copy()})
        bar = beta * bar + (1 - beta) * thetas[t]
        expected = bar / (1 - beta**t)
        got = avg.average()["theta"]
        np.testing.assert_allclose(got, expected, rtol=RTOL64, atol=ATOL64,
                                   err_msg=f"temporal average at t = {t}")
    # After one step the bias-corrected average is exactly the first iterate.
    first = optim.TemporalAverage(beta=beta)
    first.update({"theta": thetas[1].copy()})
    np.testing.assert_allclose(first.average()["theta"], thetas[1], rtol=1e-15, atol=0)


def test_inverse_sqrt_schedule_values():
    schedule = optim.inverse_sqrt(0.1)
    for t in (1, 2, 4, 100, 10**6):
        assert math.isclose(schedule(t), 0.1 / math.sqrt(t), rel_tol=1e-15)
    assert "0.1" in repr(schedule)
