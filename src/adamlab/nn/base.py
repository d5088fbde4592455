"""The layer contract that every layer in :mod:`adamlab.nn` follows.

A layer maps a minibatch forward and its gradient backward::

    y = layer.forward(x, train=True, rng=rng)   # caches what backward needs
    dx = layer.backward(dy)                      # fills layer.grads in place, returns dL/dx

``params`` and ``grads`` are dicts with the same keys and shapes. The arrays in both are created once,
at construction, and never replaced: ``backward`` *overwrites* the gradient arrays in place (it does
not accumulate), and an optimizer updates the parameter arrays in place, so
``optimizer.update(layer.params, layer.grads)`` works step after step without copying.

A layer built with ``input_grad=False`` (the first layer of a network) skips the input gradient and
returns ``None`` from ``backward``: nothing upstream needs it, and for a Linear or Conv2D layer it is
a whole GEMM.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Layer", "FLOAT_DTYPES", "check_dtype", "as_generator"]

#: Training runs in float32; gradient checks run in float64. Nothing else is accepted.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64; TypeError naming it otherwise."""
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def as_generator(rng) -> np.random.Generator:
    """``rng`` as a ``np.random.Generator``: a Generator is returned as it is, an integer seed (or a
    ``SeedSequence``) becomes ``np.random.default_rng(rng)``; anything else is a TypeError.

    ``None`` is refused too: an unseeded initialisation cannot be reproduced. A model converts its
    seed once and hands the same Generator to all its layers, so that two layers of one seed do not
    start from the same draws.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.SeedSequence) or (
            isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0):
        return np.random.default_rng(rng)
    hint = " (the legacy API: use np.random.default_rng(seed))" \
        if isinstance(rng, np.random.RandomState) else ""
    raise TypeError(f"rng must be a numpy.random.Generator or a non-negative integer seed, "
                    f"got {rng!r}{hint}")


class Layer:
    """Base class: ``params``/``grads`` dicts plus ``forward``/``backward``.

    Layers without parameters (ReLU, Flatten, ...) keep both dicts empty.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, *, train: bool = True,
                rng: np.random.Generator | None = None) -> np.ndarray:
        """Return the layer's output for the minibatch ``x`` and cache what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Given dL/dy for the last ``forward``, fill ``grads`` in place and return dL/dx."""
        raise NotImplementedError

    def _add_param(self, name: str, value: np.ndarray) -> None:
        """Register a parameter and its (zeroed) gradient array of the same shape and dtype."""
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
