"""Losses and the VAE's terms, each with its gradient, numerically stable, in the input's dtype.

Every function returns ``(value, gradient)``: the value is the MEAN over the batch (a Python float)
and the gradient is that of the mean, with the shape and dtype of the input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["softmax", "softmax_cross_entropy", "sigmoid", "sigmoid_binary_cross_entropy",
           "bernoulli_log_likelihood", "gaussian_kl"]


def _float_array(name: str, a) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}")
    return a


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax exp(z − max z)/Σ exp(z − max z), in the dtype of ``logits``."""
    _float_array("logits", logits)
    p = logits - logits.max(axis=-1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=-1, keepdims=True)
    return p


def _check_labels(y, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels y must be integers, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"labels y of shape {y.shape} do not match logits of shape "
                         f"({n}, {n_classes}): expected y of shape ({n},)")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got values in "
                         f"[{y.min()}, {y.max()}]")
    return y


def softmax_cross_entropy(logits: np.ndarray, y) -> tuple[float, np.ndarray]:
    """Mean of −log softmax(z)_y over the batch, and its gradient (softmax(z) − onehot(y))/N.

    ``logits`` (N, C) float; ``y`` (N,) integer labels in [0, C). Stable: log-sum-exp after
    subtracting the row maximum.
    """
    _float_array("logits", logits)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits must have shape (N, C) with N >= 1, got {logits.shape}")
    n, c = logits.shape
    y = _check_labels(y, n, c)
    rows = np.arange(n)
    p = logits - logits.max(axis=1, keepdims=True)  # z − max z: exp cannot overflow
    picked = p[rows, y]
    np.exp(p, out=p)
    s = p.sum(axis=1)
    loss = float(np.log(s).sum(dtype=np.float64) - picked.sum(dtype=np.float64)) / n
    p *= ((1.0 / n) / s)[:, None]  # softmax(z)/N
    p[rows, y] -= 1.0 / n
    return loss, p


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = e^min(z, 0) / (1 + e^(−|z|)): 1/(1 + e^(−z)) for z ≥ 0 and e^z/(1 + e^z) for z < 0.

    Stable for any |z| and branch-free (a masked ``np.where`` costs NumPy a mispredicted branch per
    element); computed in the dtype of ``z``.
    """
    return _softplus_and_sigmoid(z, softplus=False)[1]


def _softplus_and_sigmoid(z: np.ndarray, softplus: bool = True):
    """(softplus(z), σ(z)) from e = e^(−|z|): softplus = log1p(e) + max(z, 0), σ as above."""
    e = np.abs(z)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e^(−|z|) in (0, 1]: no overflow
    sp = None
    sig = np.maximum(z, 0)
    if softplus:
        sp = np.log1p(e)
        sp += sig
    np.minimum(z, 0, out=sig)
    np.exp(sig, out=sig)
    e += 1
    sig /= e
    return sp, sig


def sigmoid_binary_cross_entropy(z: np.ndarray, y) -> tuple[float, np.ndarray]:
    """Mean of −[y·log σ(z) + (1 − y)·log(1 − σ(z))] = softplus(z) − y·z; gradient (σ(z) − y)/N.

    ``z`` of shape (N,) or (N, 1); ``y`` of N values in {0, 1} (any numeric or bool dtype).
    """
    _float_array("z", z)
    if z.ndim not in (1, 2) or (z.ndim == 2 and z.shape[1] != 1) or z.shape[0] == 0:
        raise ValueError(f"z must have shape (N,) or (N, 1) with N >= 1, got {z.shape}")
    n = z.shape[0]
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"labels y of shape {y.shape} do not match z of shape {z.shape}: "
                         f"expected y of shape ({n},)")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("binary labels y must be 0 or 1, got other values: "
                         f"{np.unique(y[(y != 0) & (y != 1)])[:5]}")
    yz = y.astype(z.dtype).reshape(z.shape)
    softplus, grad = _softplus_and_sigmoid(z)
    loss = float(np.mean(softplus - yz * z, dtype=np.float64))
    grad -= yz
    grad /= n
    return loss, grad


def bernoulli_log_likelihood(logits: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """log p(x|z) = Σ_pixels [x·log σ(l) + (1 − x)·log(1 − σ(l))] = Σ [x·l − softplus(l)].

    Summed over pixels, mean over the batch (a log-likelihood, ≤ 0 for x in {0, 1}); the gradient
    with respect to the logits is (x − σ(l))/N. ``x`` has the shape of ``logits``, values in [0, 1].
    """
    _float_array("logits", logits)
    if not isinstance(x, np.ndarray) or x.shape != logits.shape:
        raise ValueError(f"x of shape {getattr(x, 'shape', None)} does not match logits of shape "
                         f"{logits.shape}")
    if logits.ndim == 0 or logits.shape[0] == 0:
        raise ValueError(f"logits must have a batch axis with N >= 1, got shape {logits.shape}")
    n = logits.shape[0]
    x = x.astype(logits.dtype, copy=False)
    softplus, sig = _softplus_and_sigmoid(logits)
    t = x * logits
    t -= softplus
    ll = float(np.sum(t, dtype=np.float64) / n)
    np.subtract(x, sig, out=sig)
    sig /= n
    return ll, sig


def gaussian_kl(mu: np.ndarray, logvar: np.ndarray) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """KL(N(μ, diag e^logvar) ‖ N(0, I)) = ½ Σ_j (e^logvar_j + μ_j² − 1 − logvar_j).

    Summed over latent dimensions, mean over the batch (Kingma & Welling 2013, appendix B);
    gradients dμ = μ/N and dlogvar = ½(e^logvar − 1)/N.
    """
    _float_array("mu", mu)
    _float_array("logvar", logvar)
    if mu.shape != logvar.shape or mu.ndim != 2:
        raise ValueError(f"mu {mu.shape} and logvar {logvar.shape} must have the same shape (N, J)")
    if mu.shape[0] == 0:
        raise ValueError(f"mu and logvar must have N >= 1 rows, got shape {mu.shape}")
    if mu.dtype != logvar.dtype:
        raise TypeError(f"mu ({mu.dtype}) and logvar ({logvar.dtype}) must share a dtype")
    n = mu.shape[0]
    var = np.exp(logvar)
    kl = float(0.5 * np.sum(var + mu * mu - 1 - logvar, dtype=np.float64) / n)
    dmu = mu / n
    dlogvar = var - 1
    dlogvar *= 0.5 / n
    return kl, (dmu, dlogvar)
