"""Generate tests/data/golden_torch.npz: reference optimizer trajectories from PyTorch.

PyTorch's ``torch.optim`` is an implementation written independently of ``adamlab.optim``; where
its conventions match ours, its float64 iterates must equal ours up to rounding. This script runs
each such optimizer for ``STEPS`` steps on a small non-quadratic problem whose gradient depends on
the parameters (so an error in one step feeds every later one) and stores every iterate.

torch is NOT a project dependency. Run this script from a separate environment::

    python3 -m venv ../torchenv
    ../torchenv/bin/pip install torch==2.13.0 numpy     # the CPU wheel; no CUDA packages
    ../torchenv/bin/python tests/data/make_golden.py    # writes tests/data/golden_torch.npz

The tests (tests/test_optim_golden.py) never import torch: they import only ``PROBLEM_SEED``,
``make_problem`` and ``gradient`` from this file, which need NumPy alone.

Problem (d = 6, float64):
    f(θ) = Σ_k w_k · log cosh(a_k·θ − b_k) + (λ/4) Σ_i θ_i⁴,
    g_t  = ∇f(θ_{t−1}) + σ ξ_t,
with a seeded matrix A whose columns have scales from 0.1 to 4 (an ill-conditioned, coupled
problem) and a fixed seeded noise sequence ξ_1..ξ_STEPS, stored in the file with everything else.

File layout (``np.load(path)`` works with ``allow_pickle=False``):
    problem__A, problem__b, problem__w, problem__lam, problem__noise, problem__theta0
    <case>__theta   (STEPS + 1, d)  θ_0 .. θ_STEPS as torch produced them
    <case>__grads   (STEPS, d)      the gradient torch was given at step t (evaluated at θ_{t−1})
    <case>__config  one-element unicode array: JSON with our class name and keyword arguments,
                    the optional schedule and the torch call that produced the case
    meta            one-element unicode array: JSON with torch/numpy versions and STEPS

Conventions (worked out in the test module's docstring): torch's SGD momentum buffer b relates to
our velocity as v = −α b; torch's nesterov=True keeps its parameter at Sutskever's look-ahead point
θ + μ v, which is the point our Nesterov stores; torch's Adamax adds eps inside the max, so eps=0
makes it Algorithm 2; torch's Adam(amsgrad=True) is our AMSGrad(bias_correction=True).
"""

import json
import math
import pathlib
import sys

import numpy as np

PROBLEM_SEED = 20150107
STEPS = 100
DIM = 6
OUT_PATH = pathlib.Path(__file__).with_name("golden_torch.npz")

# One entry per golden case: (name, our class, our kwargs, schedule, torch class, torch kwargs).
# A schedule is None or {"kind": "inverse_sqrt", "alpha": a}: lr_t = a / sqrt(t) for t = 1, 2, ...
CASES = [
    ("sgd", "SGD", {"lr": 0.05}, None, "SGD", {"lr": 0.05}),
    ("momentum", "Momentum", {"lr": 0.02, "momentum": 0.9}, None,
     "SGD", {"lr": 0.02, "momentum": 0.9, "dampening": 0.0}),
    ("momentum_half", "Momentum", {"lr": 0.05, "momentum": 0.5}, None,
     "SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.0}),
    ("nesterov", "Nesterov", {"lr": 0.02, "momentum": 0.9}, None,
     "SGD", {"lr": 0.02, "momentum": 0.9, "dampening": 0.0, "nesterov": True}),
    ("adagrad", "AdaGrad", {"lr": 0.1, "eps": 1e-8}, None,
     "Adagrad", {"lr": 0.1, "eps": 1e-8, "lr_decay": 0.0, "initial_accumulator_value": 0.0}),
    ("adagrad_big_eps", "AdaGrad", {"lr": 0.1, "eps": 0.5}, None,
     "Adagrad", {"lr": 0.1, "eps": 0.5, "lr_decay": 0.0, "initial_accumulator_value": 0.0}),
    ("rmsprop", "RMSProp", {"lr": 0.01, "beta2": 0.9, "eps": 1e-8}, None,
     "RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-8, "centered": False}),
    ("rmsprop_big_eps", "RMSProp", {"lr": 0.02, "beta2": 0.99, "eps": 0.1}, None,
     "RMSprop", {"lr": 0.02, "alpha": 0.99, "eps": 0.1, "centered": False}),
    ("rmsprop_momentum", "RMSProp", {"lr": 0.005, "beta2": 0.9, "eps": 1e-6, "momentum": 0.9}, None,
     "RMSprop", {"lr": 0.005, "alpha": 0.9, "eps": 1e-6, "momentum": 0.9, "centered": False}),
    ("adadelta", "AdaDelta", {"lr": 1.0, "rho": 0.95, "eps": 1e-6}, None,
     "Adadelta", {"lr": 1.0, "rho": 0.95, "eps": 1e-6}),
    ("adadelta_lr_half", "AdaDelta", {"lr": 0.5, "rho": 0.9, "eps": 1e-4}, None,
     "Adadelta", {"lr": 0.5, "rho": 0.9, "eps": 1e-4}),
    ("adam_default", "Adam", {}, None,
     "Adam", {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8}),
    ("adam_lr", "Adam", {"lr": 0.05}, None,
     "Adam", {"lr": 0.05, "betas": [0.9, 0.999], "eps": 1e-8}),
    ("adam_beta1_zero", "Adam", {"lr": 0.02, "beta1": 0.0, "beta2": 0.99}, None,
     "Adam", {"lr": 0.02, "betas": [0.0, 0.99], "eps": 1e-8}),
    ("adam_big_eps", "Adam", {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 0.05}, None,
     "Adam", {"lr": 0.05, "betas": [0.5, 0.9], "eps": 0.05}),
    ("adam_slow_moments", "Adam", {"lr": 0.01, "beta1": 0.95, "beta2": 0.9999, "eps": 1e-8}, None,
     "Adam", {"lr": 0.01, "betas": [0.95, 0.9999], "eps": 1e-8}),
    ("adam_inverse_sqrt", "Adam", {}, {"kind": "inverse_sqrt", "alpha": 0.1},
     "Adam", {"lr": 0.1, "betas": [0.9, 0.999], "eps": 1e-8}),
    ("amsgrad_bias_corrected", "AMSGrad", {"lr": 0.05, "bias_correction": True}, None,
     "Adam", {"lr": 0.05, "betas": [0.9, 0.999], "eps": 1e-8, "amsgrad": True}),
    ("amsgrad_bias_corrected_fast_v", "AMSGrad",
     {"lr": 0.05, "beta1": 0.8, "beta2": 0.9, "eps": 1e-6, "bias_correction": True}, None,
     "Adam", {"lr": 0.05, "betas": [0.8, 0.9], "eps": 1e-6, "amsgrad": True}),
    ("adamax", "AdaMax", {"lr": 0.05}, None,
     "Adamax", {"lr": 0.05, "betas": [0.9, 0.999], "eps": 0.0}),
    ("adamax_fast_u", "AdaMax", {"lr": 0.02, "beta1": 0.8, "beta2": 0.95}, None,
     "Adamax", {"lr": 0.02, "betas": [0.8, 0.95], "eps": 0.0}),
]


def make_problem(seed=PROBLEM_SEED, steps=STEPS, dim=DIM):
    """Arrays of the seeded test problem (see the module docstring), all float64."""
    rng = np.random.default_rng(seed)
    k = dim + 2
    scales = np.array([0.1, 0.3, 1.0, 2.0, 4.0, 0.5])[:dim]
    return {
        "A": rng.normal(size=(k, dim)) / math.sqrt(k) * scales,
        "b": rng.normal(size=k),
        "w": rng.uniform(0.5, 1.5, size=k),
        "lam": np.array(0.05),
        "noise": 0.1 * rng.normal(size=(steps, dim)),
        "theta0": rng.normal(size=dim) * 1.5,
    }


def gradient(theta, t, problem):
    """g_t = ∇f(θ_{t−1}) + σ ξ_t for the golden problem; ``theta`` is θ_{t−1}, t = 1, 2, ..."""
    theta = np.asarray(theta, dtype=np.float64)
    A, b, w, lam = problem["A"], problem["b"], problem["w"], float(problem["lam"])
    return A.T @ (w * np.tanh(A @ theta - b)) + lam * theta**3 + problem["noise"][t - 1]


def loss(theta, problem):
    """f(θ) without the noise term (used to confirm that each golden run makes progress)."""
    A, b, w, lam = problem["A"], problem["b"], problem["w"], float(problem["lam"])
    return float(np.sum(w * np.log(np.cosh(A @ theta - b))) + lam / 4 * np.sum(theta**4))


def run_torch_case(torch, problem, torch_name, torch_kwargs, schedule):
    """Run one torch.optim optimizer for STEPS steps; return (thetas, grads) as float64 arrays."""
    theta0 = problem["theta0"]
    p = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    kwargs = dict(torch_kwargs)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    opt = getattr(torch.optim, torch_name)([p], foreach=False, **kwargs)
    steps = problem["noise"].shape[0]
    thetas = np.empty((steps + 1, theta0.size))
    grads = np.empty((steps, theta0.size))
    thetas[0] = theta0
    for t in range(1, steps + 1):
        if schedule is not None:
            assert schedule["kind"] == "inverse_sqrt"
            for group in opt.param_groups:  # what LambdaLR(lambda s: 1/sqrt(s+1)) would set
                group["lr"] = schedule["alpha"] / math.sqrt(t)
        g = gradient(p.detach().numpy().copy(), t, problem)
        grads[t - 1] = g
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        thetas[t] = p.detach().numpy()
    return thetas, grads


def main(out_path=OUT_PATH):
    import torch  # only here: the tests import this module without torch

    torch.set_default_dtype(torch.float64)
    problem = make_problem()
    arrays = {f"problem__{key}": np.asarray(value) for key, value in problem.items()}
    f0 = loss(problem["theta0"], problem)
    for name, ours, our_kwargs, schedule, torch_name, torch_kwargs in CASES:
        thetas, grads = run_torch_case(torch, problem, torch_name, torch_kwargs, schedule)
        if not np.all(np.isfinite(thetas)):
            raise RuntimeError(f"case {name}: torch produced non-finite iterates")
        f_end = loss(thetas[-1], problem)
        print(f"{name:32s} f(θ_0) = {f0:8.4f}  f(θ_{STEPS}) = {f_end:8.4f}  "
              f"|θ_{STEPS} − θ_0| = {np.linalg.norm(thetas[-1] - thetas[0]):.3f}")
        config = {
            "optimizer": ours,
            "kwargs": our_kwargs,
            "schedule": schedule,
            "torch": f"torch.optim.{torch_name}(foreach=False, **{json.dumps(torch_kwargs)})",
        }
        arrays[f"{name}__theta"] = thetas
        arrays[f"{name}__grads"] = grads
        arrays[f"{name}__config"] = np.array([json.dumps(config, sort_keys=True)])
    meta = {"torch": torch.__version__, "numpy": np.__version__, "steps": STEPS,
            "cases": [case[0] for case in CASES], "generator": "tests/data/make_golden.py"}
    arrays["meta"] = np.array([json.dumps(meta, sort_keys=True)])
    tmp = out_path.with_name(out_path.name + ".tmp.npz")  # write then rename: nothing half-written
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out_path)
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes, {len(CASES)} cases)")


if __name__ == "__main__":
    sys.exit(main())
