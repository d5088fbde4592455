"""Convolution and max-pooling layers (NHWC) for the CNN of §6.3, written for speed in NumPy.

``Conv2D`` is a 2-D convolution (cross-correlation, as in every deep-learning library) with "same"
zero padding and stride 1. It runs through im2col: the kh·kw patches of the padded input are copied,
with one ``np.copyto`` from a ``sliding_window_view``, into a contiguous column matrix ``X`` of
shape (N·H·W, kh·kw·c_in), and then

    forward   Y  = X @ W + b          W reshaped to (kh·kw·c_in, c_out)
    backward  dW = Xᵀ @ dY,  db = Σ_rows dY
              dX = dY @ Wᵀ            one GEMM, then col2im: kh·kw strided adds into dL/dx

so each direction is a single GEMM on contiguous operands. NHWC keeps the channel axis innermost,
so the patch (kh, kw, c_in) of one output pixel is kh runs of kw·c_in contiguous numbers and
``Y`` (N·H·W, c_out) *is* the NHWC output, with no transposes.

``MaxPool2D`` takes the maximum over size×size windows (3×3, stride 2 in the paper's network) of an
input padded with −inf, so that an H×W input gives ceil(H/stride)×ceil(W/stride) (32→16→8→4). The
window maximum is separable, so it pools along W and then along H, each through ``size`` strided
views of its input, one per window position ("tap"), with no Python loop over pixels; the backward
pass routes each gradient to the arg-max of its window (ties: the first in window order) and sums
where windows overlap.

Buffers: both layers keep their work arrays (padded input, column matrix, outputs) for the last
input shape and reuse them while the shape stays the same. The arrays returned by ``forward`` and
``backward`` are therefore owned by the layer and overwritten by its next call of the same kind:
copy them if you need to keep them.
"""

from __future__ import annotations

import numbers

import numpy as np

from .base import Layer, as_generator, check_dtype
from .init import he_normal

__all__ = ["Conv2D", "MaxPool2D"]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _tap_range(offset: int, n_in: int, n_out: int, stride: int) -> tuple[slice, slice] | None:
    """(input slice, output slice) along one axis for the window tap at ``offset``.

    Output o reads input o·stride + offset (offset already includes −pad). Returns the slice of the
    inputs that lie inside [0, n_in) and the matching slice of outputs, or None if there are none.
    """
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride  # first o with input >= 0
    hi = min(n_out, (n_in - 1 - offset) // stride + 1)  # one past the last o with input < n_in
    if hi <= lo:
        return None
    start = lo * stride + offset
    return slice(start, start + (hi - lo - 1) * stride + 1, stride), slice(lo, hi)




class Conv2D(Layer):
    """2-D convolution, NHWC, kernel×kernel, "same" zero padding, stride 1, via im2col and GEMM.

    Parameters "W" (kernel, kernel, c_in, c_out), He-normal initialised (fan-in kernel²·c_in, as a
    ReLU follows every convolution of the CNN), and "b" (c_out,), zero. ``input_grad=False`` (the
    first layer) skips the input-gradient GEMM and col2im; ``backward`` then returns None.

    The input must have the layer's dtype (TypeError otherwise; models cast each minibatch once).
    """

    def __init__(self, c_in: int, c_out: int, *, kernel: int = 5, rng: np.random.Generator | int,
                 dtype=np.float32, input_grad: bool = True) -> None:
        super().__init__()
        self.c_in = _positive_int("c_in", c_in)
        self.c_out = _positive_int("c_out", c_out)
        self.kernel = _positive_int("kernel", kernel)
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd for 'same' padding, got {kernel}")
        rng = as_generator(rng)
        self.dtype = check_dtype(dtype)
        self.input_grad = bool(input_grad)
        self.pad = self.kernel // 2
        k = self.kernel
        self._add_param("W", he_normal((k, k, self.c_in, self.c_out), rng, self.dtype))
        self._add_param("b", np.zeros(self.c_out, dtype=self.dtype))
        self._shape: tuple[int, int, int] | None = None
        self._cols_valid = False

    def __repr__(self) -> str:
        return (f"Conv2D({self.c_in}, {self.c_out}, kernel={self.kernel}, dtype={self.dtype.name}, "
                f"input_grad={self.input_grad})")

    def _buffers(self, n: int, h: int, w: int) -> None:
        """(Re)allocate the work arrays for inputs of shape (n, h, w, c_in)."""
        if self._shape == (n, h, w):
            return
        self._shape = None  # stays None if an allocation below fails
        k, p = self.kernel, self.pad
        # Zero borders are written once here; forward only ever writes the interior.
        self._xp = np.zeros((n, h + 2 * p, w + 2 * p, self.c_in), dtype=self.dtype)
        # Column matrix as (n, h, w, kh, kw, c_in): row = output pixel, column = (kh, kw, c_in),
        # the order of W.reshape(-1, c_out). Backward reuses it for dL/dX (see backward).
        self._cols = np.empty((n, h, w, k, k, self.c_in), dtype=self.dtype)
        self._windows = np.lib.stride_tricks.sliding_window_view(
            self._xp, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
        self._y = np.empty((n, h, w, self.c_out), dtype=self.dtype)
        self._dx = np.empty((n, h, w, self.c_in), dtype=self.dtype) if self.input_grad else None
        # col2im: the non-centre taps (i, j) with their (input, output) slices along H and W, and
        # the number of images per block (about 1 MiB of dx, the size of a core's L2 cache).
        self._taps = []
        for i in range(k):
            for j in range(k):
                rows, cols = _tap_range(i - p, h, h, 1), _tap_range(j - p, w, w, 1)
                if (i, j) != (p, p) and rows is not None and cols is not None:
                    self._taps.append((i, j, rows, cols))
        self._block = max(1, (1 << 20) // (h * w * self.c_in * self.dtype.itemsize))
        self._shape = (n, h, w)

    def forward(self, x: np.ndarray, *, train: bool = True,
                rng: np.random.Generator | None = None) -> np.ndarray:
        """Y = im2col(x) @ W + b, returned as (N, H, W, c_out) (a buffer owned by the layer)."""
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[3] != self.c_in:
            raise ValueError(f"{self!r} expects an NHWC input of shape (N, H, W, {self.c_in}), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        if x.dtype != self.dtype:
            raise TypeError(f"{self!r} got an input of dtype {x.dtype}; cast it to {self.dtype} "
                            "first (the models do so once per minibatch)")
        if 0 in x.shape:
            raise ValueError(f"{self!r} got an empty input of shape {x.shape}")
        n, h, w, _ = x.shape
        self._buffers(n, h, w)
        p = self.pad
        np.copyto(self._xp[:, p:p + h, p:p + w, :], x)
        np.copyto(self._cols, self._windows)
        m, kdim = n * h * w, self.kernel * self.kernel * self.c_in
        y2 = self._y.reshape(m, self.c_out)
        np.matmul(self._cols.reshape(m, kdim), self.params["W"].reshape(kdim, self.c_out), out=y2)
        y2 += self.params["b"]
        self._cols_valid = True
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dW = Xᵀ dY, db = Σ dY, and (with input_grad) dL/dx = col2im(dY Wᵀ)."""
        if not self._cols_valid:
            raise RuntimeError("Conv2D.backward needs a forward pass first (one backward per "
                               "forward: the column matrix is reused for the input gradient)")
        n, h, w = self._shape
        if not isinstance(dy, np.ndarray) or dy.shape != (n, h, w, self.c_out):
            raise ValueError(f"{self!r}.backward expects dy of shape {(n, h, w, self.c_out)}, "
                             f"got {getattr(dy, 'shape', type(dy).__name__)}")
        if dy.dtype != self.dtype:
            raise TypeError(f"{self!r}.backward expects dy of dtype {self.dtype}, got {dy.dtype}")
        m, kdim = n * h * w, self.kernel * self.kernel * self.c_in
        cols = self._cols.reshape(m, kdim)
        dy2 = np.ascontiguousarray(dy).reshape(m, self.c_out)
        np.matmul(cols.T, dy2, out=self.grads["W"].reshape(kdim, self.c_out))
        np.sum(dy2, axis=0, out=self.grads["b"])
        if not self.input_grad:
            return None
        # The column matrix is not needed any more: the input gradient of the columns goes into it.
        self._cols_valid = False
        np.matmul(dy2, self.params["W"].reshape(kdim, self.c_out).T, out=cols)
        # col2im: tap (i, j) of output pixel (r, c) came from input pixel (r + i − p, c + j − p).
        # The centre tap covers every input pixel once, so it initialises dx; the other taps add
        # over the part of the image they reach (contributions to the zero padding are dropped).
        # A few images at a time, so that the block of dx being summed into stays in cache.
        p, dx, dcols = self.pad, self._dx, self._cols
        for s in range(0, n, self._block):
            b = slice(s, s + self._block)
            np.copyto(dx[b], dcols[b, :, :, p, p, :])
            for i, j, (xr, yr), (xc, yc) in self._taps:
                dxv = dx[b, xr, xc, :]
                np.add(dxv, dcols[b, yr, yc, i, j, :], out=dxv)
        return dx


class _Pool1D:
    """Max-pooling along one axis of an NHWC array (axis 1 or 2), with its arg-max masks.

    Taps t = 0 .. size−1 read input o·stride + t − pad for output o; positions outside the input
    (the −inf padding) never win, so each tap works on the clipped slices from ``_tap_range``.
    The centre tap (t = pad) is inside for every output, so it initialises the maximum; the taps
    before it are then visited backwards and win ties (>=), the taps after it forwards and need to
    be strictly larger, so the winner is the first maximal tap in window order. ``gains[t]`` marks
    where tap t took the lead; a tap wins where it took the lead and no tap visited later did.
    """

    def __init__(self, axis: int, size: int, stride: int, in_shape: tuple[int, ...],
                 dtype: np.dtype) -> None:
        self.axis, self.size, self.stride = axis, size, stride
        self.in_shape = tuple(in_shape)
        n_in = in_shape[axis]
        n_out = -(-n_in // stride)
        out_shape = list(in_shape)
        out_shape[axis] = n_out
        self.out_shape = tuple(out_shape)
        pad = size // 2
        self.centre = pad
        self.taps = {}
        for t in range(size):
            r = _tap_range(t - pad, n_in, n_out, stride)
            if r is not None:
                self.taps[t] = (self._index(r[0]), self._index(r[1]))
        before = [t for t in range(pad - 1, -1, -1) if t in self.taps]
        after = [t for t in range(pad + 1, size) if t in self.taps]
        self.visits = [(t, np.greater_equal) for t in before] + [(t, np.greater) for t in after]
        self.y = np.empty(self.out_shape, dtype=dtype)
        # False outside each tap's clipped region, for good: only the region is ever written.
        self.gains = {t: np.zeros(self.out_shape, dtype=bool) for t, _ in self.visits}
        self.later = np.empty(self.out_shape, dtype=bool)
        self.win = np.empty(self.out_shape, dtype=bool)
        self.tmp = np.empty(self.out_shape, dtype=dtype)
        self.dx = np.empty(self.in_shape, dtype=dtype)

    def _index(self, sl: slice) -> tuple:
        return (slice(None),) * self.axis + (sl,)

    def forward(self, x: np.ndarray, b: slice) -> None:
        """Pool the images ``b`` of ``x`` into the same images of ``self.y``."""
        x, y = x[b], self.y[b]
        xi, yi = self.taps[self.centre]
        np.copyto(y, x[xi])
        for t, better in self.visits:
            xi, yi = self.taps[t]
            xv, yv = x[xi], y[yi]
            better(xv, yv, out=self.gains[t][b][yi])
            np.maximum(yv, xv, out=yv)

    def backward(self, dy: np.ndarray, b: slice) -> None:
        """Route the images ``b`` of ``dy`` into the same images of ``self.dx``."""
        dy, dx, tmp, win, later = dy[b], self.dx[b], self.tmp[b], self.win[b], self.later[b]
        # The centre tap reaches each input at o·stride once: it writes those inputs directly;
        # the others start at 0 and receive the other taps' contributions.
        for r in range(1, self.stride):
            dx[self._index(slice(r, None, self.stride))] = 0
        later.fill(False)
        for t, _ in self.visits:
            np.logical_or(later, self.gains[t][b], out=later)
        np.logical_not(later, out=win)  # the centre wins where no other tap took the lead
        xi, yi = self.taps[self.centre]
        np.multiply(dy[yi], win[yi], out=dx[xi])
        later.fill(False)
        for t, _ in reversed(self.visits):
            gain = self.gains[t][b]
            np.logical_not(later, out=win)
            np.logical_and(win, gain, out=win)  # took the lead, and no tap visited later did
            np.logical_or(later, gain, out=later)
            xi, yi = self.taps[t]
            tv, dxv = tmp[yi], dx[xi]
            np.multiply(dy[yi], win[yi], out=tv)
            np.add(dxv, tv, out=dxv)


class MaxPool2D(Layer):
    """Max-pooling over size×size windows with the given stride, NHWC, input padded with −inf.

    The padding is size//2 on the top and left (1 for the paper's 3×3 windows) and as much as
    needed on the bottom and right, so that an H×W input gives ceil(H/stride)×ceil(W/stride)
    (3×3, stride 2: 32→16→8→4). Backward sends each output gradient to the arg-max of its window,
    the first in window order (row-major over the size×size positions) when several inputs tie,
    and sums where windows overlap.

    The window maximum is separable: max over the window = max over its rows of the max along
    each row. So the layer pools along W, then along H (2·size strided passes instead of size²).
    With ties broken first-in-row along W and then first row along H, the winner is exactly the
    first maximal position in row-major window order. Padded positions never win a window, so
    instead of materialising the −inf padding each tap works on the part of the image it reaches.
    """

    def __init__(self, size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.size = _positive_int("size", size)
        self.stride = _positive_int("stride", stride)
        if self.size % 2 == 0:
            raise ValueError(f"size must be odd (a window centred on its pixel), got {size}")
        if self.stride > self.size:
            raise ValueError(f"stride must be at most size ({self.size}), got {stride}")
        self.pad = self.size // 2
        self._key = None

    def __repr__(self) -> str:
        return f"MaxPool2D(size={self.size}, stride={self.stride})"

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(N, ceil(H/stride), ceil(W/stride), C) for an input of shape (N, H, W, C)."""
        n, h, w, c = shape
        return n, -(-h // self.stride), -(-w // self.stride), c

    def forward(self, x: np.ndarray, *, train: bool = True,
                rng: np.random.Generator | None = None) -> np.ndarray:
        """Window maxima, (N, ceil(H/stride), ceil(W/stride), C) (a buffer owned by the layer)."""
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise ValueError(f"MaxPool2D expects an NHWC input of shape (N, H, W, C), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        if x.dtype.kind != "f":
            raise TypeError(f"MaxPool2D expects a float32 or float64 input, got dtype {x.dtype}")
        dt = check_dtype(x.dtype)
        if 0 in x.shape:
            raise ValueError(f"MaxPool2D got an empty input of shape {x.shape}")
        key = (x.shape, dt)
        if self._key != key:
            self._key = None
            self._along_w = _Pool1D(2, self.size, self.stride, x.shape, dt)
            self._along_h = _Pool1D(1, self.size, self.stride, self._along_w.out_shape, dt)
            # A few images at a time (about 512 KiB of input), so that each pass after the
            # first finds its operands in cache.
            n = x.shape[0]
            block = max(1, (1 << 19) // (x[0].size * dt.itemsize))
            self._blocks = [slice(s, s + block) for s in range(0, n, block)]
            self._key = key
        along_w, along_h = self._along_w, self._along_h
        for b in self._blocks:
            along_w.forward(x, b)
            along_h.forward(along_w.y, b)
        return along_h.y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dL/dx: each dy added at its window's arg-max (overlapping windows sum)."""
        if self._key is None:
            raise RuntimeError("MaxPool2D.backward needs a forward pass first")
        shape, dt = self._along_h.out_shape, self._key[1]
        if not isinstance(dy, np.ndarray) or dy.shape != shape:
            raise ValueError(f"MaxPool2D.backward expects dy of shape {shape}, got "
                             f"{getattr(dy, 'shape', type(dy).__name__)}")
        if dy.dtype != dt:
            raise TypeError(f"MaxPool2D.backward expects dy of dtype {dt}, got {dy.dtype}")
        along_w, along_h = self._along_w, self._along_h
        for b in self._blocks:
            along_h.backward(dy, b)
            along_w.backward(along_h.dx, b)
        return along_w.dx
