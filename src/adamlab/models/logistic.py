"""Logistic regression: multinomial (MNIST, §6.1) and binary on sparse bag-of-words (IMDB, §6.1)."""

from __future__ import annotations

import numpy as np

from ..nn.layers import Dropout, Linear
from ..nn.losses import sigmoid, sigmoid_binary_cross_entropy
from .base import Model, as_minibatch, check_dropout, check_finite_input

__all__ = ["LogisticRegression", "SparseLogisticRegression"]


class LogisticRegression(Model):
    """Multinomial logistic regression: p(y|x) = softmax(x·W + b), with L2 weight decay on W.

    The layer is named ``fc`` (params ``fc.W`` (n_in, n_classes) and ``fc.b``); W starts Glorot
    uniform. The loss is the mean softmax cross-entropy plus (λ/2)‖W‖².
    """

    def __init__(self, n_in: int = 784, n_classes: int = 10, *, weight_decay: float = 0.0,
                 rng: np.random.Generator | int, dtype=np.float32) -> None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
                or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        fc = Linear(n_in, n_classes, rng=rng, dtype=dtype, input_grad=False)
        super().__init__([("fc", fc)], dtype=dtype, weight_decay=weight_decay)


class SparseLogisticRegression(Model):
    """Binary logistic regression P(y=1|x) = σ(x·w + b) on sparse bag-of-words minibatches.

    ``x`` is a SciPy sparse (CSR) minibatch of shape (N, n_features); ``y`` in {0, 1}. Input
    dropout with probability ``input_dropout`` drops *stored entries* of the minibatch (a stored
    zero is unaffected either way) and scales the kept ones by 1/(1 − p), without densifying.

    Sparse guarantee: the model never densifies its input, not even a minibatch: the forward pass
    is a sparse-times-dense product x·w, the backward pass the product xᵀ·dz, and dropout rescales
    ``x.data`` (a copy of the minibatch's stored values only). A dense array is accepted as well.
    Params: ``fc.W`` (n_features, 1), ``fc.b`` (1,).
    """

    def __init__(self, n_features: int = 10000, *, input_dropout: float = 0.0,
                 weight_decay: float = 0.0, rng: np.random.Generator | int,
                 dtype=np.float32) -> None:
        self.input_dropout = check_dropout("input_dropout", input_dropout)
        fc = Linear(n_features, 1, rng=rng, dtype=dtype, input_grad=False)
        super().__init__([("fc", fc)], dtype=dtype, weight_decay=weight_decay)
        self.n_features = fc.n_in
        self._dense_dropout = Dropout(self.input_dropout)

    def _input(self, x, *, train: bool, rng: np.random.Generator | None):
        if hasattr(x, "tocsr") and hasattr(x, "nnz"):
            x = x.tocsr()  # a no-op for a CSR matrix
            if x.dtype.kind not in "fiub":
                raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
            if x.dtype.kind == "f":
                check_finite_input(x.data, "x (its stored values)")
            p = self.input_dropout
            if train and p > 0.0:
                if not isinstance(rng, np.random.Generator):
                    raise TypeError(f"input_dropout={p} in training needs rng=np.random.Generator, "
                                    f"got {type(rng).__name__}")
                keep = rng.random(x.nnz, dtype=self.dtype) < 1.0 - p
                data = x.data.astype(self.dtype) * keep
                data *= 1.0 / (1.0 - p)
                return type(x)((data, x.indices, x.indptr), shape=x.shape)
            return x if x.dtype == self.dtype else x.astype(self.dtype)
        x = as_minibatch(x, self.dtype)
        return self._dense_dropout.forward(x, train=train, rng=rng)  # ordinary inverted dropout

    def loss(self, out, y):
        return sigmoid_binary_cross_entropy(out, y)

    def loss_and_grads(self, x, y, *, rng: np.random.Generator | None, train: bool = True) -> float:
        """Mean binary cross-entropy (+ (λ/2)‖w‖²) of a sparse minibatch; fills ``self.grads``."""
        x = self._input(x, train=train, rng=rng)
        self._check_rows(x, y)
        out = self.forward(x, train=train, rng=rng)
        value, dout = self.loss(out, y)
        self.backward(dout)
        return value + self.add_weight_decay()

    def predict_proba(self, x) -> np.ndarray:
        """P(y = 1 | x), shape (N,)."""
        return sigmoid(self.forward(self._input(x, train=False, rng=None), train=False))[:, 0]

    def predict(self, x) -> np.ndarray:
        """Predicted labels in {0, 1}, shape (N,)."""
        return (self.forward(self._input(x, train=False, rng=None), train=False)[:, 0] > 0) \
            .astype(np.int64)
