"""Adam (Kingma & Ba, ICLR 2015, Algorithm 1) and its variants AMSGrad and AdaMax.

Algorithm 1 (all operations element-wise; defaults α = 0.001, β1 = 0.9, β2 = 0.999, ε = 1e-8)::

    m_0 ← 0, v_0 ← 0, t ← 0
    while θ_t not converged:
        t ← t + 1
        g_t ← ∇_θ f_t(θ_{t−1})
        m_t ← β1·m_{t−1} + (1 − β1)·g_t            (biased first moment estimate)
        v_t ← β2·v_{t−1} + (1 − β2)·g_t²           (biased second raw moment estimate)
        m̂_t ← m_t / (1 − β1^t)                     (bias-corrected first moment)
        v̂_t ← v_t / (1 − β2^t)                     (bias-corrected second moment)
        θ_t ← θ_{t−1} − α·m̂_t / (√v̂_t + ε)

§2 reorders the last three lines for efficiency: α_t = α·√(1 − β2^t)/(1 − β1^t) and
θ_t ← θ_{t−1} − α_t·m_t/(√v_t + ε̂). Multiplying numerator and denominator of Algorithm 1's last line
by √(1 − β2^t) shows the two are identical when ε̂ = ε·√(1 − β2^t). The classes here use that
efficient form (two scalars per step, no m̂ or v̂ arrays); :func:`algorithm1_step` is the literal
line-by-line transcription and :func:`efficient_step` the literal §2 form, both returning new arrays,
for tests, notebooks and benchmarks.

* :class:`Adam`: Algorithm 1; ``bias_correction=False`` drops m̂ and v̂ (θ ← θ − α·m/(√v + ε), the
  "RMSProp with momentum" baseline of §6.4); ``beta1_decay=λ`` uses β1,t = β1·λ^(t−1) in the m_t line
  (Theorem 4.1) while m̂_t keeps Algorithm 1's 1 − β1^t.
* :class:`AMSGrad` (Reddi, Kale & Kumar, ICLR 2018, Algorithm 2): v̂_t ← max(v̂_{t−1}, v_t) replaces
  v_t in the denominator; it overrides one method of :class:`Adam`.
* :class:`AdaMax` (Algorithm 2, §7.1): u_t ← max(β2·u_{t−1}, |g_t|), θ_t ← θ_{t−1} − (α/(1−β1^t))·m_t/u_t.
"""

from __future__ import annotations

import math

import numpy as np

from .base import (
    Optimizer,
    bias_correction,
    check_nonnegative,
    check_open_unit_interval,
    check_unit_interval,
    ema,
)

# ----------------------------------------------------------------------------- reference forms


def algorithm1_step(theta, g, m, v, t, lr, beta1, beta2, eps):
    """One step of Algorithm 1, transcribed line by line; returns new ``(theta, m, v)``.

    ``t`` is the index of this step (1 for the first); ``m`` and ``v`` are m_{t−1} and v_{t−1}.
    Deliberately naive (every line allocates): the reference the classes are tested against.
    """
    m = beta1 * m + (1 - beta1) * g  # m_t ← β1·m_{t−1} + (1 − β1)·g_t
    v = beta2 * v + (1 - beta2) * g**2  # v_t ← β2·v_{t−1} + (1 − β2)·g_t²
    m_hat = m / (1 - beta1**t)  # m̂_t ← m_t/(1 − β1^t)
    v_hat = v / (1 - beta2**t)  # v̂_t ← v_t/(1 − β2^t)
    theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)  # θ_t ← θ_{t−1} − α·m̂_t/(√v̂_t + ε)
    return theta, m, v


def efficient_step(theta, g, m, v, t, lr, beta1, beta2, eps_hat):
    """One step of §2's reordered form; returns new ``(theta, m, v)``.

    α_t = α·√(1 − β2^t)/(1 − β1^t), θ_t ← θ_{t−1} − α_t·m_t/(√v_t + ε̂). Equal to
    :func:`algorithm1_step` when ``eps_hat = eps * sqrt(1 - beta2**t)``.
    """
    m = beta1 * m + (1 - beta1) * g  # m_t ← β1·m_{t−1} + (1 − β1)·g_t
    v = beta2 * v + (1 - beta2) * g**2  # v_t ← β2·v_{t−1} + (1 − β2)·g_t²
    alpha_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)  # α_t = α·√(1 − β2^t)/(1 − β1^t)
    theta = theta - alpha_t * m / (np.sqrt(v) + eps_hat)  # θ_t ← θ_{t−1} − α_t·m_t/(√v_t + ε̂)
    return theta, m, v


# ----------------------------------------------------------------------------- optimizers


class Adam(Optimizer):
    """Adam, Kingma & Ba 2015 Algorithm 1 (ε added to √v̂_t), in the §2 efficient form.

    Parameters: ``lr`` (α, float or schedule), ``beta1``, ``beta2`` in [0, 1), ``eps`` ≥ 0,
    ``bias_correction`` (False: θ ← θ − α·m/(√v + ε)), ``beta1_decay`` (λ in (0, 1) or None:
    β1,t = β1·λ^(t−1), Theorem 4.1).

    Overflow: a finite gradient with g² beyond the dtype's range (|g| > 1.8e19 in float32) would
    make v_t infinite and that entry's step 0 from then on. ``update`` raises FloatingPointError
    naming the parameter before anything is written, as for a non-finite gradient (torch and optax
    run on silently; see ``Optimizer.squares_gradient``).
    Underflow: with ``eps=0`` an entry with v_t = 0 takes a step of 0, not 0/0. That is exact when
    every gradient so far was 0 (then m_t = 0 too); it also stops an entry whose g² underflows
    (|g| < 1e-19 in float32) although its m_t is not 0; any ε > 0 avoids this.
    """

    slots = ("m", "v")
    nonnegative_slots = ("v",)
    squares_gradient = True  # |g| above SQUARE_LIMIT is rejected before any write

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, bias_correction=True,
                 beta1_decay=None) -> None:
        super().__init__(lr)
        self.beta1 = check_unit_interval("beta1", beta1)
        self.beta2 = check_unit_interval("beta2", beta2)
        self.eps = check_nonnegative("eps", eps)
        if not isinstance(bias_correction, bool):
            raise ValueError(f"bias_correction must be True or False, got {bias_correction!r}")
        self.bias_correction = bias_correction
        self.beta1_decay = (None if beta1_decay is None
                            else check_open_unit_interval("beta1_decay", beta1_decay))

    def hyperparams(self) -> dict:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "bias_correction": self.bias_correction, "beta1_decay": self.beta1_decay}

    def beta1_at(self, t: int) -> float:
        """β1,t: β1, or β1·λ^(t−1) with ``beta1_decay=λ`` (Theorem 4.1)."""
        if self.beta1_decay is None:
            return self.beta1
        return self.beta1 * self.beta1_decay ** (t - 1)

    def _constants(self, t: int, lr: float) -> tuple:
        # m̂_t ← m_t/(1 − β1^t) and v̂_t ← v_t/(1 − β2^t) become two scalars (§2's reordering):
        # α·m̂_t/(√v̂_t + ε) = α_t·m_t/(√v_t + ε̂), exactly, with the α_t and ε̂ below.
        if self.bias_correction:
            k = math.sqrt(bias_correction(self.beta2, t))
            alpha_t = lr * k / bias_correction(self.beta1, t)  # α_t = α·√(1 − β2^t)/(1 − β1^t)
            eps_hat = self.eps * k  # ε̂ = ε·√(1 − β2^t): identical to Algorithm 1
        else:
            alpha_t, eps_hat = lr, self.eps
        return (self.beta1_at(t), alpha_t, eps_hat)

    def _second_moment(self, state: tuple) -> np.ndarray:
        """The (raw) second-moment estimate in the denominator: v_t itself for Adam."""
        return state[1]

    def _step(self, theta, g, state, work, c) -> None:
        beta1_t, alpha_t, eps_hat = c
        m, v = state[0], state[1]
        (w,) = work
        ema(m, g, beta1_t, out=w)  # m_t ← β1·m_{t−1} + (1 − β1)·g_t
        np.multiply(g, g, out=w)
        ema(v, w, self.beta2, out=w)  # v_t ← β2·v_{t−1} + (1 − β2)·g_t²
        np.sqrt(self._second_moment(state), out=w)  # √v̂_t = √v_t/√(1 − β2^t): folded into α_t, ε̂
        np.add(w, eps_hat, out=w)
        if eps_hat == 0.0:
            np.divide(m, w, out=w, where=w != 0)  # ε = 0, v = 0: step 0, not NaN (see Underflow above)
        else:
            np.divide(m, w, out=w)
        np.multiply(w, alpha_t, out=w)
        np.subtract(theta, w, out=theta)  # θ_t ← θ_{t−1} − α_t·m_t/(√v_t + ε̂)  (= α·m̂_t/(√v̂_t + ε))


class AMSGrad(Adam):
    """AMSGrad, Reddi, Kale & Kumar 2018 Algorithm 2: Adam with v̂_t ← max(v̂_{t−1}, v_t).

    Default ``bias_correction=False`` is the paper's algorithm (θ ← θ − α·m_t/(√v̂_t + ε)).
    ``bias_correction=True`` is the library variant (as torch.optim.Adam(amsgrad=True)): the maximum
    is taken over raw v, then m is divided by 1 − β1^t and v̂ by 1 − β2^t as in Adam.
    """

    slots = ("m", "v", "v_hat")
    nonnegative_slots = ("v", "v_hat")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, bias_correction=False) -> None:
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps, bias_correction=bias_correction)

    def hyperparams(self) -> dict:
        h = super().hyperparams()
        del h["beta1_decay"]
        return h

    def _second_moment(self, state: tuple) -> np.ndarray:
        v, v_hat = state[1], state[2]
        np.maximum(v_hat, v, out=v_hat)  # v̂_t ← max(v̂_{t−1}, v_t)
        return v_hat


class AdaMax(Optimizer):
    """AdaMax, Kingma & Ba 2015 Algorithm 2 (§7.1): Adam with the infinity norm.

    u_t ← max(β2·u_{t−1}, |g_t|) needs no bias correction; where u_t = 0 every gradient so far was 0
    (so m_t = 0) and the step is 0 rather than 0/0.
    """

    slots = ("m", "u")
    nonnegative_slots = ("u",)

    def __init__(self, lr=0.002, beta1=0.9, beta2=0.999) -> None:
        super().__init__(lr)
        self.beta1 = check_unit_interval("beta1", beta1)
        self.beta2 = check_unit_interval("beta2", beta2)

    def hyperparams(self) -> dict:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2}

    def _constants(self, t: int, lr: float) -> tuple:
        return (lr / bias_correction(self.beta1, t),)  # α/(1 − β1^t)

    def _step(self, theta, g, state, work, c) -> None:
        (alpha_t,) = c
        m, u = state
        (w,) = work
        ema(m, g, self.beta1, out=w)  # m_t ← β1·m_{t−1} + (1 − β1)·g_t
        np.abs(g, out=w)
        np.multiply(u, self.beta2, out=u)
        np.maximum(u, w, out=u)  # u_t ← max(β2·u_{t−1}, |g_t|)
        np.divide(m, u, out=w, where=u != 0)  # where u_t = 0, w = |g_t| = 0 already
        np.multiply(w, alpha_t, out=w)
        np.subtract(theta, w, out=theta)  # θ_t ← θ_{t−1} − (α/(1 − β1^t))·m_t/u_t
