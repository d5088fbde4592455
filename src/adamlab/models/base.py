"""The model base class: an ordered list of named layers with flat ``params``/``grads`` dicts.

``model.params["fc1.W"]`` *is* ``layer.params["W"]`` of the layer named ``fc1`` (the same array
object), and likewise for ``grads``, so ``Adam().update(model.params, model.grads)`` updates the
layers in place. A training step is::

    loss = model.loss_and_grads(x, y, rng=rng)   # mean loss (+ weight decay), fills model.grads
    opt.update(model.params, model.grads)

Dtype: the model's dtype is that of its parameters, fixed at construction (float32 for training,
float64 for gradient checks). An input minibatch of the other float dtype is cast to the model's
dtype once, on entry to ``loss_and_grads``/``predict``; inside, no array of another dtype is made.

Weight decay λ ≥ 0 adds (λ/2)·Σ‖W‖² over the weight matrices and kernels (every parameter named
``W``; biases are not decayed) to the loss, and λ·W to their gradients.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..nn.base import Layer, check_dtype
from ..nn.losses import softmax, softmax_cross_entropy
from ..optim.base import all_finite

__all__ = ["Model", "as_minibatch", "check_finite_input"]

DECAYED = "W"  # the name of the parameters that weight decay applies to


def as_minibatch(x, dtype: np.dtype) -> np.ndarray:
    """``x`` as an array of ``dtype``: cast once if it has another float dtype; else TypeError.

    A nan or inf in ``x`` is a ValueError naming its position: a model has no meaningful output
    for it (``argmax`` of a nan row is label 0, silently), and in training it would surface only
    as a non-finite gradient of some parameter.
    """
    if hasattr(x, "tocsr") and hasattr(x, "nnz"):
        raise TypeError("this model takes dense arrays, got a SciPy sparse matrix")
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"x must be a floating-point array, got dtype {x.dtype}")
    check_finite_input(x)
    return x.astype(dtype, copy=False)


def check_finite_input(values: np.ndarray, what: str = "x") -> None:
    """Raise ValueError naming the first non-finite entry of ``values`` (one pass, no copy)."""
    if not all_finite(values):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
        raise ValueError(f"{what} has a non-finite entry ({float(values[where])!r} at index "
                         f"{where if len(where) != 1 else where[0]}): the model has no meaningful "
                         f"output for it; remove or impute such values first")


def check_nonempty(x) -> None:
    """Raise ValueError for a minibatch of 0 examples: its mean loss is 0/0."""
    if x.shape[0] == 0:
        raise ValueError(f"the minibatch is empty (x of shape {x.shape}): a mean loss needs at "
                         f"least one example")


def check_weight_decay(weight_decay) -> float:
    if (isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real)
            or not weight_decay >= 0 or not np.isfinite(weight_decay)):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    return float(weight_decay)


def check_dropout(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p!r}")
    return float(p)


class Model:
    """A feed-forward stack of named layers trained with a loss on its last output.

    Subclasses build the layers and call ``super().__init__(layers, dtype=..., weight_decay=...)``.
    The default loss is softmax cross-entropy on integer labels (multi-class classifiers); override
    :meth:`loss` and :meth:`predict_proba`/:meth:`predict` for other outputs.
    """

    def __init__(self, layers: list[tuple[str, Layer]], *, dtype=np.float32,
                 weight_decay: float = 0.0) -> None:
        self.dtype = check_dtype(dtype)
        self.weight_decay = check_weight_decay(weight_decay)
        names = [name for name, _ in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique, got {names}")
        self.layers: dict[str, Layer] = dict(layers)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        for name, layer in layers:
            for key, value in layer.params.items():
                if value.dtype != self.dtype:
                    raise TypeError(f"parameter {name}.{key} has dtype {value.dtype}, "
                                    f"the model {self.dtype}")
                self.params[f"{name}.{key}"] = value
                self.grads[f"{name}.{key}"] = layer.grads[key]
        self.decayed = [k for k in self.params if k.rsplit(".", 1)[-1] == DECAYED]
        self._scratch: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={layer!r}" for n, layer in self.layers.items())
        return (f"{type(self).__name__}({inner}, dtype={self.dtype}, "
                f"weight_decay={self.weight_decay})")

    @property
    def n_params(self) -> int:
        return sum(p.size for p in self.params.values())

    # ----------------------------------------------------------------------------- passes

    def forward(self, x, *, train: bool = True, rng: np.random.Generator | None = None):
        """The last layer's output (e.g. logits) for a minibatch already in the model's dtype."""
        for layer in self.layers.values():
            x = layer.forward(x, train=train, rng=rng)
        return x

    def backward(self, dout) -> None:
        """Back-propagate dL/d(output) through the layers, filling every layer's grads.

        Stops at the first layer built with ``input_grad=False`` (it returns None): nothing below
        it has parameters that need a gradient.
        """
        d = dout
        for layer in reversed(self.layers.values()):
            d = layer.backward(d)
            if d is None:
                break

    def loss(self, out, y) -> tuple[float, np.ndarray]:
        """``(mean loss, dL/d out)`` of the last layer's output; softmax cross-entropy here."""
        return softmax_cross_entropy(out, y)

    def add_weight_decay(self) -> float:
        """Add λ·W to the grads of the weights and return (λ/2)·Σ‖W‖² (0 when λ = 0)."""
        lam = self.weight_decay
        if lam == 0.0:
            return 0.0
        penalty = 0.0
        for key in self.decayed:
            w, g = self.params[key], self.grads[key]
            flat = w.reshape(-1)
            penalty += float(np.dot(flat, flat))
            s = self._scratch.get(key)
            if s is None:
                s = self._scratch[key] = np.empty_like(w)
            np.multiply(w, lam, out=s)
            np.add(g, s, out=g)
        return 0.5 * lam * penalty

    def _check_rows(self, x, y) -> None:
        n = np.shape(y)[0] if np.ndim(y) else None
        if n != x.shape[0]:
            raise ValueError(f"x of shape {x.shape} and y of shape {np.shape(y)} have different "
                             "numbers of examples")
        check_nonempty(x)

    def loss_and_grads(self, x, y, *, rng: np.random.Generator | None, train: bool = True) -> float:
        """Mean loss over the minibatch (plus the weight-decay term); fills ``self.grads``.

        ``x`` is cast to the model's dtype once if it has another float dtype. ``rng`` feeds dropout
        (it may be None for a model without dropout or with ``train=False``).
        """
        x = as_minibatch(x, self.dtype)
        self._check_rows(x, y)
        out = self.forward(x, train=train, rng=rng)
        value, dout = self.loss(out, y)
        self.backward(dout)
        return value + self.add_weight_decay()

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities (N, C) at evaluation (no dropout)."""
        return softmax(self.forward(as_minibatch(x, self.dtype), train=False))

    def predict(self, x) -> np.ndarray:
        """Predicted labels (N,) at evaluation (no dropout)."""
        return np.argmax(self.forward(as_minibatch(x, self.dtype), train=False), axis=1)
