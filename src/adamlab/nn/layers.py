"""Dense and element-wise layers: Linear, ReLU, Softplus, Dropout, Flatten.

Every layer follows :class:`adamlab.nn.base.Layer`. For speed in the training loop:

- **Buffers are reused.** The arrays returned by ``forward`` and ``backward`` belong to the layer
  and are overwritten by its next ``forward``/``backward`` (a new batch size allocates new ones). Copy
  a result if you need to keep it past the next call. Inputs are never modified, except by
  ``ReLU(inplace=True)``, which says so.
- **No transposed copies of operands.** Every GEMM is one ``np.matmul(..., out=buffer)``, with
  ``W.T`` and ``x.T`` passed as views (BLAS takes the transpose as a flag). The one copy is the
  input gradient of a big Linear layer, computed transposed because that GEMM runs faster.
- **No float64 temporaries.** A layer computes in its dtype (float32 or float64, given at
  construction); an input of another dtype is a TypeError, not a silent cast. Parameter-free layers
  work in the dtype of their input (or check it against ``dtype`` when one is given).
"""

from __future__ import annotations

import numpy as np

from .base import Layer, as_generator, check_dtype
from .init import glorot_uniform, he_normal

__all__ = ["Linear", "ReLU", "Softplus", "Dropout", "Flatten"]

_INITS = {"glorot": glorot_uniform, "he": he_normal}
_TRANSPOSED_DX_MIN = 256  # Linear layers with n_in, n_out >= this compute dxᵀ (see backward)


def _is_sparse(x) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


class _Buffers:
    """Arrays kept between calls, reallocated only when the shape or dtype changes."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype=dtype)
            self._arrays[name] = a
        return a


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _input_dtype(layer, x, dtype: np.dtype | None) -> np.dtype:
    """The dtype a parameter-free layer computes in: that of ``x`` (float32 or float64)."""
    if type(x) is np.ndarray and (x.dtype == _F32 or x.dtype == _F64) and (
            dtype is None or x.dtype == dtype):
        return x.dtype  # the usual case, checked cheaply (this runs on every step)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer!r} expects a NumPy array, got {type(x).__name__}")
    if x.dtype not in (_F32, _F64):
        raise TypeError(f"{layer!r} expects a float32 or float64 input, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{layer!r} was built for {dtype}, got an input of dtype {x.dtype}")
    return x.dtype  # an ndarray subclass


def _check_grad(layer, dy, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """``dy`` must be an array of the shape and dtype of the last forward's output."""
    if type(dy) is np.ndarray and dy.shape == shape and dy.dtype == dtype:
        return
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{layer!r}.backward expects a NumPy array, got {type(dy).__name__}")
    if dy.shape != shape:
        raise ValueError(f"{layer!r}.backward: gradient of shape {dy.shape} does not match the "
                         f"output of the last forward, shape {shape}")
    if dy.dtype != dtype:
        raise TypeError(f"{layer!r}.backward: gradient of dtype {dy.dtype}, expected {dtype}")


class Linear(Layer):
    """Fully connected layer y = x·W + b, with W of shape (n_in, n_out) and b of shape (n_out,).

    Backward: dW = xᵀ·dy, db = Σ_rows dy, dx = dy·Wᵀ (skipped with ``input_grad=False``, e.g. for
    the first layer of a network). ``x`` may also be a SciPy sparse matrix (a CSR minibatch): then
    x·W and xᵀ·dy are sparse-times-dense products and ``x`` is never densified.
    ``init`` is ``"glorot"`` (uniform) or ``"he"`` (normal); biases start at 0.
    """

    def __init__(self, n_in: int, n_out: int, *, rng: np.random.Generator | int, init: str = "glorot",
                 dtype=np.float32, input_grad: bool = True) -> None:
        super().__init__()
        self.dtype = check_dtype(dtype)
        for name, n in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{name} must be a positive integer, got {n!r}")
        if init not in _INITS:
            raise ValueError(f"init must be one of {sorted(_INITS)}, got {init!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.input_grad = bool(input_grad)
        rng = as_generator(rng)
        self._add_param("W", _INITS[init]((self.n_in, self.n_out), rng, self.dtype))
        self._add_param("b", np.zeros(self.n_out, dtype=self.dtype))
        self._buf = _Buffers()
        self._x = None

    def __repr__(self) -> str:
        return f"Linear({self.n_in}, {self.n_out}, dtype={self.dtype})"

    def _check_input(self, x) -> bool:
        """Validate x; return whether it is a SciPy sparse matrix."""
        sparse = not isinstance(x, np.ndarray)
        if sparse and not _is_sparse(x):
            raise TypeError(f"{self!r} expects a NumPy array or a SciPy sparse matrix, "
                            f"got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"{self!r} expects input of shape (N, {self.n_in}), got {x.shape}")
        if x.dtype != self.dtype:
            raise TypeError(f"{self!r} got an input of dtype {x.dtype}; cast it to {self.dtype} "
                            "first (the models do so once per minibatch)")
        return sparse

    def forward(self, x, *, train: bool = True, rng: np.random.Generator | None = None):
        """y = x·W + b."""
        sparse = self._check_input(x)
        W, b = self.params["W"], self.params["b"]
        if sparse:
            y = np.asarray(x @ W)
        else:
            y = self._buf.get("y", (x.shape[0], self.n_out), self.dtype)
            np.matmul(x, W, out=y)
        np.add(y, b, out=y)
        self._x, self._sparse = x, sparse
        return y

    def backward(self, dy):
        """dW = xᵀ·dy, db = Σ_rows dy; returns dx = dy·Wᵀ (None with ``input_grad=False``)."""
        x = self._x
        if x is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        _check_grad(self, dy, (x.shape[0], self.n_out), self.dtype)
        np.sum(dy, axis=0, out=self.grads["b"])  # first, while dy is still in cache
        if self._sparse:
            np.copyto(self.grads["W"], x.T @ dy)
        else:
            np.matmul(x.T, dy, out=self.grads["W"])
        if not self.input_grad:
            return None
        W = self.params["W"]
        dx = self._buf.get("dx", (x.shape[0], self.n_in), self.dtype)
        if min(self.n_in, self.n_out) >= _TRANSPOSED_DX_MIN:
            # dxᵀ = W·dyᵀ into an (n_in, N) buffer, then one transposing copy: for big layers
            # OpenBLAS runs this product 5–10% faster than dy·Wᵀ, more than the copy costs
            # (measured on the project machine; for small layers the copy costs more).
            dxT = self._buf.get("dxT", (self.n_in, x.shape[0]), self.dtype)
            np.matmul(W, dy.T, out=dxT)
            np.copyto(dx, dxT.T)
        else:
            np.matmul(dy, W.T, out=dx)
        return dx


class ReLU(Layer):
    """y = max(x, 0), computed as x·[x > 0], the boolean mask kept for backward: dx = dy·[x > 0].

    (Two cheap passes, a comparison and a product, beat ``np.maximum`` in NumPy; the boolean mask
    takes a quarter of the memory of a float one.)
    With ``inplace=True`` the layer overwrites its input with the output in ``forward`` and the
    incoming gradient with dx in ``backward`` (both are returned): no output buffers, less memory
    traffic. The models use it where the input is a buffer of the layer below that nothing else
    reads (the output of a Linear or Conv2D layer).
    """

    def __init__(self, *, inplace: bool = False, dtype=None) -> None:
        super().__init__()
        self.dtype = None if dtype is None else check_dtype(dtype)
        self.inplace = bool(inplace)
        self._buf = _Buffers()
        self._mask = None

    def __repr__(self) -> str:
        return "ReLU(inplace=True)" if self.inplace else "ReLU()"

    def forward(self, x, *, train: bool = True, rng: np.random.Generator | None = None):
        dt = _input_dtype(self, x, self.dtype)
        mask = self._buf.get("mask", x.shape, np.dtype(np.bool_))
        y = x if self.inplace else self._buf.get("y", x.shape, dt)
        np.greater(x, 0, out=mask)  # [x > 0]
        np.multiply(x, mask, out=y)
        self._mask, self._dtype = mask, dt
        return y

    def backward(self, dy):
        mask = self._mask
        if mask is None:
            raise RuntimeError("ReLU: backward called before forward")
        _check_grad(self, dy, mask.shape, self._dtype)
        dx = dy if self.inplace else self._buf.get("dx", mask.shape, self._dtype)
        np.multiply(dy, mask, out=dx)
        return dx


class Softplus(Layer):
    """y = log(1 + eˣ), computed stably as log1p(e^(−|x|)) + max(x, 0); dy/dx = σ(x)."""

    def __init__(self, *, dtype=None) -> None:
        super().__init__()
        self.dtype = None if dtype is None else check_dtype(dtype)
        self._buf = _Buffers()
        self._sig = None

    def __repr__(self) -> str:
        return "Softplus()"

    def forward(self, x, *, train: bool = True, rng: np.random.Generator | None = None):
        dt = _input_dtype(self, x, self.dtype)
        e = self._buf.get("e", x.shape, dt)
        y = self._buf.get("y", x.shape, dt)
        sig = self._buf.get("sig", x.shape, dt)
        np.abs(x, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)  # e = e^(−|x|) in (0, 1]: no overflow
        np.log1p(e, out=y)
        np.maximum(x, 0, out=sig)
        y += sig
        # σ(x) = e^min(x, 0)/(1 + e^(−|x|)): exact for both signs and branch-free
        np.minimum(x, 0, out=sig)
        np.exp(sig, out=sig)
        e += 1
        sig /= e
        self._sig = sig
        return y

    def backward(self, dy):
        sig = self._sig
        if sig is None:
            raise RuntimeError("Softplus: backward called before forward")
        _check_grad(self, dy, sig.shape, sig.dtype)
        dx = self._buf.get("dx", sig.shape, sig.dtype)
        np.multiply(dy, sig, out=dx)
        return dx


class Dropout(Layer):
    """Inverted dropout: y = x·k/(1 − p), k ~ Bernoulli(1 − p) per unit, drawn from ``rng``.

    ``p`` is the probability of *dropping* a unit, 0 ≤ p < 1. At evaluation (``train=False``) and
    for p = 0 the layer is the identity (it returns its input). The mask is drawn from the ``rng``
    passed to ``forward``, so the same seed gives the same mask (a float32 and a float64 layer draw
    different streams). Backward multiplies by the same scaled mask.
    """

    def __init__(self, p: float, *, dtype=None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) \
                or not 0.0 <= float(p) < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.dtype = None if dtype is None else check_dtype(dtype)
        self._buf = _Buffers()
        self._mask = None
        self._identity = True
        self._shape = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def forward(self, x, *, train: bool = True, rng: np.random.Generator | None = None):
        dt = _input_dtype(self, x, self.dtype)
        self._shape, self._dtype = x.shape, dt
        self._identity = not train or self.p == 0.0
        if self._identity:
            return x
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"Dropout(p={self.p}) in training needs rng=np.random.Generator, "
                            f"got {type(rng).__name__}")
        mask = self._buf.get("mask", x.shape, dt)
        rng.random(out=mask, dtype=dt)  # u ~ U[0, 1)
        np.less(mask, 1.0 - self.p, out=mask)  # k = [u < 1 − p] ~ Bernoulli(1 − p)
        np.multiply(mask, 1.0 / (1.0 - self.p), out=mask)  # k/(1 − p)
        y = self._buf.get("y", x.shape, dt)
        np.multiply(x, mask, out=y)
        self._mask = mask
        return y

    def backward(self, dy):
        if self._shape is None:
            raise RuntimeError("Dropout: backward called before forward")
        _check_grad(self, dy, self._shape, self._dtype)
        if self._identity:
            return dy
        dx = self._buf.get("dx", self._shape, self._dtype)
        np.multiply(dy, self._mask, out=dx)
        return dx


class Flatten(Layer):
    """(N, d1, d2, ...) → (N, d1·d2·...), a view when the input is contiguous."""

    def __init__(self, *, dtype=None) -> None:
        super().__init__()
        self.dtype = None if dtype is None else check_dtype(dtype)
        self._shape = None

    def __repr__(self) -> str:
        return "Flatten()"

    def forward(self, x, *, train: bool = True, rng: np.random.Generator | None = None):
        dt = _input_dtype(self, x, self.dtype)
        if x.ndim < 2:
            raise ValueError(f"Flatten() expects input of shape (N, ...) with ndim >= 2, "
                             f"got {x.shape}")
        self._shape, self._dtype = x.shape, dt
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        if self._shape is None:
            raise RuntimeError("Flatten: backward called before forward")
        n = int(np.prod(self._shape[1:]))
        _check_grad(self, dy, (self._shape[0], n), self._dtype)
        return dy.reshape(self._shape)
