"""Convolutional network for CIFAR-10 (§6.3): c64-c64-c128-1000, 5×5 convolutions, 3×3 max-pools."""

from __future__ import annotations

import numbers

import numpy as np

from ..nn.base import as_generator
from ..nn.conv import Conv2D, MaxPool2D
from ..nn.layers import Dropout, Flatten, Linear, ReLU
from ..nn.losses import softmax
from .base import Model, as_minibatch, check_dropout

__all__ = ["CNN"]


class CNN(Model):
    """Three stages of 5×5 convolution + ReLU + 3×3 max-pooling (stride 2), FC 1000 ReLU, FC 10.

    The paper's network (§6.3, "c64-c64-c128-1000") on NHWC input (N, 32, 32, 3): each stage is a
    5×5 "same" convolution (64, 64, then 128 channels), a ReLU and a 3×3 max-pool with stride 2
    (32→16→8→4), followed by a fully connected layer of 1000 ReLU units and a 10-way softmax
    trained with cross-entropy. The paper does not say whether a ReLU follows each convolution; we
    put one after each.

    Layers: [drop_in] conv1 pool1 relu1 conv2 pool2 relu2 conv3 pool3 relu3 flatten fc1 relu4
    [drop_fc] fc2. Each stage applies its ReLU *after* the pooling: max-pooling commutes with the
    ReLU (a non-decreasing function), max(relu(x)) = relu(max(x)), and the gradients agree as well
    (where the window maximum is ≤ 0 both are 0; otherwise both go to the same arg-max), so the
    network is conv → ReLU → pool as described, computed on a quarter of the values. ``drop_in``
    (dropout on the input image) and ``drop_fc`` (after the FC ReLU) exist only when their
    probability is > 0. Convolution kernels and fc1 start He normal (a ReLU follows them), fc2
    Glorot uniform; biases 0. The first convolution computes no input gradient.
    Params: ``conv1.W`` (5, 5, 3, 64), ``conv1.b``, ..., ``fc1.W`` (2048, 1000), ..., ``fc2.b``.

    ``input_shape`` (H, W, C) and ``channels`` (one entry per stage) can be made smaller for tests.

    Memory: the convolutions keep column buffers sized by the batch (about 1.6 MB per image for
    conv2), so ``predict`` and ``predict_proba`` work through their input ``EVAL_BATCH`` images at
    a time; ``loss_and_grads`` takes the minibatch it is given as one batch.
    """

    EVAL_BATCH = 128

    def __init__(self, input_shape=(32, 32, 3), channels=(64, 64, 128), fc: int = 1000,
                 n_classes: int = 10, *, input_dropout: float = 0.0, fc_dropout: float = 0.0,
                 weight_decay: float = 0.0, rng: np.random.Generator | int,
                 dtype=np.float32) -> None:
        rng = as_generator(rng)  # one Generator for all layers, also from an integer seed
        input_shape, channels = tuple(input_shape), tuple(channels)
        if len(input_shape) != 3 or not all(_is_pos_int(s) for s in input_shape):
            raise ValueError(f"input_shape must be (H, W, C) of positive integers, "
                             f"got {input_shape}")
        if not channels or not all(_is_pos_int(c) for c in channels):
            raise ValueError(f"channels must be a non-empty sequence of positive integers, "
                             f"got {channels}")
        for name, value in (("fc", fc), ("n_classes", n_classes)):
            if not _is_pos_int(value):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.channels = tuple(int(c) for c in channels)
        self.input_dropout = check_dropout("input_dropout", input_dropout)
        self.fc_dropout = check_dropout("fc_dropout", fc_dropout)
        layers = []
        if self.input_dropout > 0:
            layers.append(("drop_in", Dropout(self.input_dropout)))
        h, w, c_in = self.input_shape
        pool = MaxPool2D(3, 2)
        for i, c_out in enumerate(self.channels, start=1):
            layers.append((f"conv{i}", Conv2D(c_in, c_out, kernel=5, rng=rng, dtype=dtype,
                                              input_grad=i > 1)))
            layers.append((f"pool{i}", MaxPool2D(3, 2)))
            layers.append((f"relu{i}", ReLU()))
            _, h, w, c_in = pool.output_shape((1, h, w, c_out))
        self.flat_size = h * w * c_in
        self.n_classes = int(n_classes)
        k = len(self.channels) + 1
        layers.append(("flatten", Flatten()))
        layers.append(("fc1", Linear(self.flat_size, int(fc), rng=rng, init="he", dtype=dtype)))
        layers.append((f"relu{k}", ReLU()))
        if self.fc_dropout > 0:
            layers.append(("drop_fc", Dropout(self.fc_dropout)))
        layers.append(("fc2", Linear(int(fc), int(n_classes), rng=rng, init="glorot",
                                     dtype=dtype)))
        super().__init__(layers, dtype=dtype, weight_decay=weight_decay)

    def forward(self, x, *, train: bool = True, rng: np.random.Generator | None = None):
        """Logits (N, n_classes) for an NHWC minibatch (N, H, W, C) in the model's dtype."""
        if not isinstance(x, np.ndarray) or x.shape[1:] != self.input_shape:
            h, w, c = self.input_shape
            raise ValueError(f"CNN expects NHWC input of shape (N, {h}, {w}, {c}), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        return super().forward(x, train=train, rng=rng)

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities (N, n_classes) at evaluation, EVAL_BATCH images at a time."""
        x = as_minibatch(x, self.dtype)
        if x.ndim == 0:
            raise ValueError("CNN expects NHWC input, got a scalar")
        out = np.empty((x.shape[0], self.n_classes), dtype=self.dtype)
        for s in range(0, x.shape[0], self.EVAL_BATCH):
            out[s:s + self.EVAL_BATCH] = softmax(self.forward(x[s:s + self.EVAL_BATCH],
                                                              train=False))
        return out

    def predict(self, x) -> np.ndarray:
        """Predicted labels (N,) at evaluation (no dropout), EVAL_BATCH images at a time."""
        return np.argmax(self.predict_proba(x), axis=1)


def _is_pos_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value > 0
