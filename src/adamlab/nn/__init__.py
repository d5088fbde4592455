"""Layers and losses in NumPy with forward and backward passes, gradient-checked in float64."""

from .base import Layer
from .gradcheck import numerical_gradient, relative_error

__all__ = ["Layer", "numerical_gradient", "relative_error"]
