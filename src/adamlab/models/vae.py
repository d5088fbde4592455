"""Variational auto-encoder of Kingma & Welling (2013), as used in the Adam paper's §6.4.

Encoder 784 → 500 softplus → (μ, log σ²) of a 50-d Gaussian q(z|x); z = μ + σ·ε with
ε ~ N(0, I) (the reparameterisation trick, one sample per example); decoder 50 → 500 softplus → 784
Bernoulli logits. The loss is the negative ELBO per example (mean over the batch):

    −ELBO = −log p(x|z) + KL(q(z|x) ‖ N(0, I)).
"""

from __future__ import annotations

import numpy as np

from ..nn.base import as_generator
from ..nn.layers import Linear, Softplus
from ..nn.losses import bernoulli_log_likelihood, gaussian_kl, sigmoid
from .base import Model, as_minibatch, check_nonempty

__all__ = ["VAE"]


class VAE(Model):
    """Gaussian-latent, Bernoulli-output VAE trained on the negative ELBO (one sample of ε).

    Layers (all Glorot uniform, biases 0): ``enc`` (n_in → n_hidden), ``enc_act`` (softplus),
    ``mu`` and ``logvar`` (n_hidden → n_latent each), ``dec`` (n_latent → n_hidden), ``dec_act``
    (softplus), ``out`` (n_hidden → n_in, Bernoulli logits). ``x`` holds pixel intensities in
    [0, 1] (the Bernoulli log-likelihood accepts grey levels as in Kingma & Welling's code).
    """

    def __init__(self, n_in: int = 784, n_hidden: int = 500, n_latent: int = 50, *,
                 rng: np.random.Generator | int, dtype=np.float32) -> None:
        kw = {"rng": as_generator(rng), "dtype": dtype}  # one Generator for all layers
        layers = [("enc", Linear(n_in, n_hidden, input_grad=False, **kw)),
                  ("enc_act", Softplus()),
                  ("mu", Linear(n_hidden, n_latent, **kw)),
                  ("logvar", Linear(n_hidden, n_latent, **kw)),
                  ("dec", Linear(n_latent, n_hidden, **kw)),
                  ("dec_act", Softplus()),
                  ("out", Linear(n_hidden, n_in, **kw))]
        super().__init__(layers, dtype=dtype, weight_decay=0.0)
        self.n_in, self.n_hidden, self.n_latent = int(n_in), int(n_hidden), int(n_latent)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(μ, log σ²) of q(z|x) for a minibatch in the model's dtype (layer-owned buffers)."""
        L = self.layers
        h = L["enc_act"].forward(L["enc"].forward(x))
        return L["mu"].forward(h), L["logvar"].forward(h)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Bernoulli logits of p(x|z)."""
        L = self.layers
        return L["out"].forward(L["dec_act"].forward(L["dec"].forward(z)))

    def forward(self, x, *, train: bool = True, rng: np.random.Generator | None = None):
        """Reconstruction logits with z = μ (no noise)."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def backward(self, dout) -> None:
        raise NotImplementedError("VAE.backward: use loss_and_grads (the ELBO has two branches)")

    def loss_and_grads(self, x, y=None, *, rng: np.random.Generator | None,
                       train: bool = True) -> float:
        """Negative ELBO per example, mean over the batch; fills ``self.grads``.

        ε ~ N(0, I) is drawn from ``rng`` (so a fixed seed gives fixed noise); ``y`` is ignored and
        ``train`` has no effect (there is no dropout). ``x`` is cast to the model's dtype once.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"VAE.loss_and_grads needs rng=np.random.Generator for the noise ε, "
                            f"got {type(rng).__name__}")
        x = as_minibatch(x, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"VAE expects x of shape (N, {self.n_in}), got {x.shape}")
        check_nonempty(x)
        L = self.layers
        mu, logvar = self.encode(x)
        eps = rng.standard_normal(mu.shape, dtype=self.dtype)
        std = np.exp(0.5 * logvar)  # σ = exp(log σ² / 2)
        z = mu + std * eps  # reparameterisation: z = μ + σ·ε
        logits = self.decode(z)
        ll, dll = bernoulli_log_likelihood(logits, x)  # E_q[log p(x|z)], one sample
        kl, (dmu_kl, dlogvar_kl) = gaussian_kl(mu, logvar)
        np.negative(dll, out=dll)  # d(−ELBO)/d logits
        dz = L["dec"].backward(L["dec_act"].backward(L["out"].backward(dll)))
        dmu = dz + dmu_kl  # ∂z/∂μ = 1
        dlogvar = dz * eps
        dlogvar *= std
        dlogvar *= 0.5  # ∂z/∂log σ² = ε·σ/2
        dlogvar += dlogvar_kl
        dh = L["mu"].backward(dmu)  # the mu layer's buffer: add the logvar branch in place
        np.add(dh, L["logvar"].backward(dlogvar), out=dh)
        L["enc"].backward(L["enc_act"].backward(dh))
        return kl - ll

    def predict(self, x) -> np.ndarray:
        """Reconstruction probabilities σ(logits) with z = μ, shape (N, n_in)."""
        return sigmoid(self.forward(as_minibatch(x, self.dtype), train=False))

    predict_proba = predict
