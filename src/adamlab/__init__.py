"""adamlab: the reference NumPy implementation behind the executable Adam book.

Kingma, D. P. and Ba, J. L. "Adam: A Method for Stochastic Optimization", ICLR 2015.
"""

__version__ = "0.1.0"
