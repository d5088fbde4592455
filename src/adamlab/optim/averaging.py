"""Temporal averaging of the parameters, Kingma & Ba 2015 §7.2 (after Polyak & Juditsky 1992).

θ̄_t ← β·θ̄_{t−1} + (1 − β)·θ_t with θ̄_0 = 0, and the bias-corrected average θ̂_t = θ̄_t/(1 − β^t).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .base import CHUNK, Stateful, bias_correction, check_unit_interval, ema


class TemporalAverage(Stateful):
    """Exponential moving average of the parameters (§7.2); call ``update(params)`` after each step."""

    slots = ("avg",)

    def __init__(self, beta=0.999) -> None:
        super().__init__()
        self.beta = check_unit_interval("beta", beta)
        self._scratch: dict[np.dtype, np.ndarray] = {}

    def hyperparams(self) -> dict:
        return {"beta": self.beta}

    def update(self, params: Mapping) -> None:
        """θ̄_t ← β·θ̄_{t−1} + (1 − β)·θ_t for every array in ``params``; increments ``t``."""
        self._check_params(params)
        self._ensure_state(params)
        with np.errstate(all="ignore"):  # as in Optimizer._run_chunks: no half-written average
            self._average_in(params)
        self.t += 1

    def _average_in(self, params: Mapping) -> None:
        for name, theta in params.items():
            avg = self.state[name]["avg"]
            if theta.size == 0:
                continue
            src = theta.reshape(-1)  # a copy only for a strided parameter (read-only use)
            dst = avg.reshape(-1)
            n = src.size
            buf = self._scratch.get(theta.dtype)
            if buf is None or buf.size < min(n, CHUNK):
                buf = self._scratch[theta.dtype] = np.empty(min(n, CHUNK), dtype=theta.dtype)
            for i in range(0, n, CHUNK):
                j = min(i + CHUNK, n)
                ema(dst[i:j], src[i:j], self.beta, out=buf[: j - i])  # θ̄_t ← β·θ̄_{t−1} + (1−β)·θ_t

    def average(self) -> dict[str, np.ndarray]:
        """A new dict of the bias-corrected averages θ̂_t = θ̄_t/(1 − β^t)."""
        if self.t == 0:
            raise ValueError("TemporalAverage.average() needs at least one update(params) first")
        c = bias_correction(self.beta, self.t)
        return {name: s["avg"] / c for name, s in self.state.items()}
