"""The paper's models (§6) as compositions of :mod:`adamlab.nn` layers.

Each has ``loss_and_grads(x, y, *, rng, train=True)`` (mean loss, fills ``grads``), ``predict`` and
flat ``params``/``grads`` dicts that plug into ``optimizer.update(model.params, model.grads)``.
Constructors take ``rng`` as a ``np.random.Generator`` or an integer seed (converted once with
``np.random.default_rng``, so that all layers draw from one stream).
"""

from .base import Model
from .cnn import CNN
from .logistic import LogisticRegression, SparseLogisticRegression
from .mlp import MLP
from .vae import VAE

__all__ = ["Model", "LogisticRegression", "SparseLogisticRegression", "MLP", "CNN", "VAE"]
