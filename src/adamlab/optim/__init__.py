"""Optimizers of the Adam paper (Kingma & Ba, ICLR 2015) and of its comparisons, in NumPy.

All share one contract (:class:`Optimizer`): ``opt.update(params, grads)`` updates the arrays of the
dict ``params`` in place, ``opt.t`` counts completed steps, ``opt.state_dict()`` /
``opt.load_state_dict()`` save and restore, and ``Cls.slots`` names the per-parameter state arrays.
"""

from .adagrad import AdaGrad
from .adam import AdaMax, Adam, AMSGrad, algorithm1_step, efficient_step
from .averaging import TemporalAverage
from .base import Optimizer, StateError, get_num_threads, set_num_threads
from .rmsprop import AdaDelta, RMSProp
from .schedules import inverse_sqrt
from .sgd import SGD, Momentum, Nesterov

__all__ = [
    "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam", "AdaMax", "AMSGrad",
    "TemporalAverage", "inverse_sqrt", "Optimizer", "StateError", "algorithm1_step", "efficient_step",
    "get_num_threads", "set_num_threads",
]
