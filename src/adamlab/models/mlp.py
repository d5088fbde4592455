"""Multi-layer perceptron for MNIST (§6.2): 784–1000–1000–10, ReLU, optional dropout."""

from __future__ import annotations

import numpy as np

from ..nn.base import as_generator
from ..nn.layers import Dropout, Linear, ReLU
from .base import Model, check_dropout

__all__ = ["MLP"]


class MLP(Model):
    """Fully connected ReLU network with a softmax output, trained with cross-entropy.

    Layers: [drop0] fc1 relu1 [drop1] fc2 relu2 [drop2] ... fcL, where ``drop0`` (input dropout)
    and ``drop1...`` (dropout after each hidden ReLU) exist only when their probability is > 0.
    Hidden weights start He normal (they feed a ReLU), the output weights Glorot uniform; biases 0.
    The first Linear computes no input gradient. Params: ``fc1.W``, ``fc1.b``, ..., ``fcL.b``.
    """

    def __init__(self, sizes=(784, 1000, 1000, 10), *, input_dropout: float = 0.0,
                 hidden_dropout: float = 0.0, weight_decay: float = 0.0,
                 rng: np.random.Generator | int, dtype=np.float32) -> None:
        rng = as_generator(rng)  # one Generator for all layers, also from an integer seed
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least the input and output sizes, got {sizes}")
        self.sizes = sizes
        self.input_dropout = check_dropout("input_dropout", input_dropout)
        self.hidden_dropout = check_dropout("hidden_dropout", hidden_dropout)
        layers = []
        if self.input_dropout > 0:
            layers.append(("drop0", Dropout(self.input_dropout)))
        n_layers = len(sizes) - 1
        for i in range(1, n_layers + 1):
            last = i == n_layers
            layers.append((f"fc{i}", Linear(sizes[i - 1], sizes[i], rng=rng, dtype=dtype,
                                              init="glorot" if last else "he",
                                              input_grad=i > 1)))
            if not last:
                layers.append((f"relu{i}", ReLU(inplace=True)))  # overwrites fc{i}'s output
                if self.hidden_dropout > 0:
                    layers.append((f"drop{i}", Dropout(self.hidden_dropout)))
        super().__init__(layers, dtype=dtype, weight_decay=weight_decay)
