"""The pieces of a fixed-grid panel (:class:`~adamlab.experiments.specs.GridSpec`, Figure 4):
binarised MNIST, the VAE, its ELBO evaluation, and the records that stand in for tuning.

The runner and the driver call these through small hooks: the dataset ``mnist-binary`` and the
model kind ``vae`` in their tables, :data:`EVALUATORS` for the evaluated cost, :func:`untuned` in
place of a search, :func:`log_problem` in the result validation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["binarised_mnist", "build_vae", "elbo_cost", "eval_indices", "untuned",
           "log_problem", "describe_grid", "EVALUATORS", "EVAL_CHUNK", "GridPoint", "point_of",
           "load_grid", "loss_at", "point_relation", "CLOSE", "HOLDS"]

EVAL_CHUNK = 2000  # rows per forward pass of the ELBO evaluation

#: "close": corrected and uncorrected within this relative difference on seed 0; such a point
#: is decided by the seeds' interval (:func:`point_relation`)
CLOSE = 0.03

#: the relations of :func:`point_relation` under which "Adam is equal or better" holds
HOLDS = frozenset({"better", "equal", "better (the other diverged)", "both diverged"})


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


# ----------------------------------------------------------------------------- reading a grid


class GridPoint(NamedTuple):
    """One point of Figure 4's grid: bias correction on or off, β1, β2 and the step size α."""

    corrected: bool
    beta1: float
    beta2: float
    lr: float


def point_of(spec, name: str) -> GridPoint:
    """The :class:`GridPoint` of the grid entry ``name`` of ``spec``."""
    opt = spec.optimizer(name)
    f = dict(opt.fixed)
    return GridPoint(bool(f.get("bias_correction", True)), float(f["beta1"]), float(f["beta2"]),
                     opt.lr.value(opt.lr.lo))


def load_grid(spec, results=None, seeds=None) -> tuple[dict, list[str]]:
    """``(records, missing)`` of a grid panel that a sweep is still filling: ``records`` is
    ``{(name, seed): record}`` for every grid point whose results exist on every seed of
    ``seeds`` (default: the spec's), ``missing`` the names of the others, in the spec's order.
    A stale or invalid file raises as in :func:`~adamlab.experiments.results.load_results`."""
    from .results import load_results, result_path, results_dir

    root = results_dir(results)
    want = spec.seeds if seeds is None else tuple(seeds)
    names = [o.name for o in spec.optimizers]
    have = [n for n in names if all(result_path(root, spec, n, k).is_file() for k in want)]
    return (load_results(spec, root, optimizers=have, seeds=want),
            [n for n in names if n not in have])


def loss_at(rec: dict, epoch: int) -> float:
    """The evaluated cost of a result after ``epoch`` epochs; ``inf`` when the run diverged at or
    before that epoch (it was stopped there). ``ValueError`` if the epoch was not evaluated."""
    div = rec["diverged"]
    if div is not None and div["epoch"] <= epoch:
        return float("inf")
    if epoch not in rec["full_cost_epochs"]:
        raise ValueError(f"{rec['optimizer']} (seed {rec['seed']}) was not evaluated after "
                         f"epoch {epoch}; it was after {rec['full_cost_epochs']}")
    return float(rec["full_cost"][rec["full_cost_epochs"].index(epoch)])


def point_relation(adam, other, close: float = CLOSE, level: float = 0.95) -> dict:
    """How Adam's loss stands to the uncorrected optimizer's at one grid point and epoch.

    ``adam`` and ``other`` hold one loss per seed (same seeds, seed 0 first; ``inf`` for a run
    that diverged). With ``r`` the relative difference on seed 0, ``adam/other − 1``:

    * a diverged run loses to one that did not: ``better (the other diverged)`` or
      ``worse (diverged)``; ``both diverged`` counts as equal;
    * ``|r| > close``: ``better`` or ``worse`` when every seed has the sign of seed 0's
      difference (``mixed`` otherwise); one seed decides, as the difference is larger than the
      seeds' spread at the close points;
    * ``|r| <= close``: decided by the ``level`` t-interval of the mean paired difference over
      the seeds (at least 3): ``better`` if it lies below 0, ``worse`` above, ``equal`` if it
      holds 0; with fewer seeds ``close (one seed)``, undecided.

    Returns ``relation``, ``r`` (seed 0), ``n`` (seeds), and ``lo``, ``hi`` (the interval of the
    mean relative difference, ``None`` when not computed).
    """
    from scipy import stats

    a, b = np.asarray(adam, dtype=float), np.asarray(other, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0 or np.isnan(a).any() or np.isnan(b).any():
        raise ValueError(f"point_relation needs one loss (or inf) per seed for both, got {a} "
                         f"and {b}")
    out = {"n": int(a.size), "r": None, "lo": None, "hi": None}
    da, db = np.isinf(a[0]), np.isinf(b[0])
    if da or db:
        rel = ("both diverged" if da and db else "worse (diverged)" if da
               else "better (the other diverged)")
        return {**out, "relation": rel}
    if np.isinf(a).any() or np.isinf(b).any():
        return {**out, "relation": "mixed"}
    r = a / b - 1
    out["r"] = float(r[0])
    if abs(r[0]) > close:
        same = np.all(np.sign(r) == np.sign(r[0]))
        return {**out, "relation": ("better" if r[0] < 0 else "worse") if same else "mixed"}
    if a.size < 3:
        return {**out, "relation": "close (one seed)" if a.size == 1 else "close (two seeds)"}
    half = stats.t.ppf(0.5 + level / 2, a.size - 1) * r.std(ddof=1) / np.sqrt(a.size)
    lo, hi = float(r.mean() - half), float(r.mean() + half)
    rel = "better" if hi < 0 else "worse" if lo > 0 else "equal"
    return {**out, "relation": rel, "lo": lo, "hi": hi}
