"""The pieces of a fixed-grid panel (:class:`~adamlab.experiments.specs.GridSpec`, Figure 4):
binarised MNIST, the VAE, its ELBO evaluation, and the records that stand in for tuning.

The runner and the driver call these through small hooks: the dataset ``mnist-binary`` and the
model kind ``vae`` in their tables, :data:`EVALUATORS` for the evaluated cost, :func:`untuned` in
place of a search, :func:`log_problem` in the result validation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binarised_mnist", "build_vae", "elbo_cost", "eval_indices", "untuned",
           "log_problem", "describe_grid", "EVALUATORS", "EVAL_CHUNK"]

EVAL_CHUNK = 2000  # rows per forward pass of the ELBO evaluation


def binarised_mnist(data):
    """MNIST training images with each pixel 1 where its intensity in [0, 1] exceeds 0.5, else 0
    (float32); the labels are kept but the VAE ignores them."""
    from ..data import load_mnist

    m = load_mnist()
    return (m.x_train > 0.5).astype(np.float32), m.y_train


def build_vae(m, p_in, p_hid, init):
    """:class:`~adamlab.models.VAE` with ``sizes`` (input, hidden, latent), e.g. (784, 500, 50)."""
    from ..models import VAE

    n_in, n_hidden, n_latent = m.sizes
    return VAE(n_in, n_hidden, n_latent, rng=init)


def eval_indices(spec, n: int) -> np.ndarray:
    """The sorted rows of the evaluation set: ``spec.eval_n`` of ``n`` drawn without replacement
    by the evaluation seed (all ``n`` when ``eval_n`` is None or not smaller)."""
    if spec.eval_n is None or spec.eval_n >= n:
        return np.arange(n)
    rng = np.random.default_rng(np.random.SeedSequence(spec.eval_seed).spawn(2)[0])
    return np.sort(rng.choice(n, spec.eval_n, replace=False))


def elbo_cost(spec, model, x, y=None) -> float:
    """The negative ELBO per example on the evaluation set, averaged over ``spec.eval_samples``
    latent samples per example: −log p(x|z) + KL(q(z|x) ‖ N(0, I)) with z = μ + σ·ε.

    The networks run in the model's dtype; the log-likelihood and the KL term are computed and
    summed in float64. ε comes from a generator seeded by ``spec.eval_seed`` afresh at every call,
    so every evaluation of every run uses the same noise (differences come from the parameters).
    """
    from ..models.base import as_minibatch

    rows = eval_indices(spec, x.shape[0])
    noise = np.random.default_rng(np.random.SeedSequence(spec.eval_seed).spawn(2)[1])
    total = 0.0
    for i in range(0, len(rows), EVAL_CHUNK):
        xc = as_minibatch(x[rows[i:i + EVAL_CHUNK]], model.dtype)
        mu, logvar = model.encode(xc)
        mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
        # KL = ½ Σ_j (σ_j² + μ_j² − 1 − log σ_j²), the same for every sample
        kl = 0.5 * np.sum(np.exp(logvar) + mu * mu - 1.0 - logvar)
        std = np.exp(0.5 * logvar)
        x64 = xc.astype(np.float64)
        for _ in range(spec.eval_samples):
            eps = noise.standard_normal(mu.shape)
            z = (mu + std * eps).astype(model.dtype)
            logits = model.decode(z).astype(np.float64)
            # log p(x|z) = Σ_pixels [x·l − softplus(l)]
            ll = np.sum(x64 * logits - np.logaddexp(0.0, logits))
            total += kl - ll
    return float(total / (len(rows) * spec.eval_samples))


#: model kind -> the evaluated cost ``f(spec, model, x, y)``; other kinds use the runner's
#: full-training-set cost.
EVALUATORS = {"vae": elbo_cost}


def untuned(spec, names) -> dict:
    """``{optimizer: record}`` standing in for tuning records: each entry runs at the one point
    of its grid. The record is stored in each result (its ``tuning`` key)."""
    out = {}
    for name in names:
        opt = spec.optimizer(name)
        out[name] = {"optimizer": name, "chosen": {"lr": opt.lr.value(opt.lr.lo)},
                     "tuned": False, "fixed": dict(opt.fixed),
                     "note": "no search: the grid is the experiment"}
    return out


def log_problem(rec: dict, spec) -> str | None:
    """What is wrong with the first-epochs step log of a grid result (None if nothing): the
    logged steps are every ``step_log_every``-th step of each logged epoch that completed (and
    of the epoch a run diverged in, up to where it did), with one finite cost each."""
    if not getattr(spec, "step_log_every", 0):
        return None
    steps, costs = rec.get("step_cost_steps"), rec.get("step_cost")
    if not isinstance(steps, list) or not isinstance(costs, list):
        return "step_cost or step_cost_steps is missing or not a list"
    if len(steps) != len(costs):
        return f"step_cost has {len(costs)} entries, step_cost_steps {len(steps)}"
    per, k = rec["steps_per_epoch"], spec.step_log_every
    div = rec["diverged"]
    want = []
    for epoch in range(1, min(spec.step_log_epochs, rec["epochs"]) + 1):
        last = per
        if div is not None and epoch > rec["completed_epochs"]:
            if epoch != div["epoch"] or div["step"] is None:
                break
            last = div["step"] - 1
        want += [(epoch - 1) * per + s for s in range(k, last + 1, k)]
    if steps != want:
        return f"step_cost_steps is {str(steps)[:60]}, expected {str(want)[:60]}"
    for i, v in enumerate(costs):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v):
            return f"step_cost[{i}] is {v!r}, not a finite number"
    above = rec.get("above_ceiling", "missing")
    if spec.diverge_above is not None and above is not None and not (
            isinstance(above, dict) and set(above) == {"epoch", "step", "cost"}
            and isinstance(above["epoch"], int) and isinstance(above["step"], int)
            and isinstance(above["cost"], float) and above["cost"] > spec.diverge_above):
        return f"above_ceiling is {str(above)[:60]}, not null or {{epoch, step, cost}}"
    return None


def describe_grid(spec) -> list[str]:
    """The lines :func:`~adamlab.experiments.specs.describe` prints for a grid: its axes, the
    logging, the evaluation and the divergence rule."""
    fixed = [dict(o.fixed) for o in spec.optimizers]
    alphas = sorted({o.lr.value(o.lr.lo) for o in spec.optimizers})

    def axis(key):
        return ", ".join(f"{v:g}" for v in sorted({f[key] for f in fixed}))
    corr = sorted({f.get("bias_correction", True) for f in fixed}, reverse=True)
    ev = "all" if spec.eval_n is None else f"{spec.eval_n:,}"
    return [f"  no tuning: a grid of {len(spec.optimizers)} points, all from the shared "
            "initialisation:",
            f"      bias correction {', '.join('on' if c else 'off' for c in corr)}; "
            f"beta1 {axis('beta1')}; beta2 {axis('beta2')}; eps {axis('eps')}",
            f"      alpha {', '.join(f'{a:g}' for a in alphas)} (constant)",
            f"  cost logged every epoch, and every {spec.step_log_every} steps of the first "
            f"{spec.step_log_epochs} epoch(s)",
            f"  evaluated: the negative ELBO on {ev} training examples",
            f"      (drawn with seed {spec.eval_seed}), {spec.eval_samples} latent sample(s) "
            "each, summed in float64",
            f"  diverged (stopped): a non-finite cost or gradient, or an evaluated cost above "
            f"{spec.diverge_above:g}"]
