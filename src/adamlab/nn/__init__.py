"""Layers and losses in NumPy with forward and backward passes, gradient-checked in float64."""

from .base import FLOAT_DTYPES, Layer, as_generator, check_dtype
from .conv import Conv2D, MaxPool2D
from .gradcheck import numerical_gradient, relative_error
from .init import (PERTURB_ENV, fans, glorot_uniform, he_normal, perturbation,
                   set_perturbation)
from .layers import Dropout, Flatten, Linear, ReLU, Softplus
from .losses import (bernoulli_log_likelihood, gaussian_kl, sigmoid, sigmoid_binary_cross_entropy,
                     softmax, softmax_cross_entropy)

__all__ = [
    "Layer", "FLOAT_DTYPES", "check_dtype", "as_generator", "numerical_gradient", "relative_error",
    "fans", "glorot_uniform", "he_normal", "perturbation", "set_perturbation", "PERTURB_ENV",
    "Linear", "ReLU", "Softplus", "Dropout", "Flatten", "Conv2D", "MaxPool2D",
    "softmax", "softmax_cross_entropy", "sigmoid", "sigmoid_binary_cross_entropy",
    "bernoulli_log_likelihood", "gaussian_kl",
]
