"""Frozen specs of the §6 experiments: one :class:`PanelSpec` per figure panel and preset.

A spec states everything a run depends on (data and preprocessing, model, loss and regularisation,
minibatch size, epochs, the optimizers with their fixed hyper-parameters, step-size schedule and
tuning grid, the tuning budget and criterion, the seeds and the evaluation schedule). Its
:meth:`PanelSpec.spec_hash` is the SHA-256 of its canonical JSON (sorted keys, no spaces, floats
in Python's shortest round-trip form), so a result or a checkpoint made under another spec is
recognised and refused.

Choices the paper leaves open (Kingma & Ba 2015, §6: "dropout rates and L2 coefficients are not
given"), identical for every optimizer of a panel:

* Fig 1 MNIST: L2 coefficient λ = 1e-4 (the cost adds (λ/2)‖W‖², biases not decayed); no dropout.
* Fig 1 IMDB: λ = 1e-4; input dropout 0.5 (the paper's "50% dropout noise"), off in the plain
  AdaGrad curve only.
* Fig 2a: no L2 (λ = 0); dropout 0.2 on the inputs and 0.5 after each hidden ReLU (the rates of
  Srivastava et al. 2014 for MNIST MLPs).
* fig2a-decay (a follow-up, not in the paper): fig2a-mlp's setup with Adam alone, under
  α_t = α/√t instead of a constant α.

Fixed hyper-parameters (not tuned): Adam β1 = 0.9, β2 = 0.999, ε = 1e-8 (Algorithm 1 defaults);
AdaGrad ε = 1e-8; RMSProp β2 = 0.9 (Tieleman & Hinton's decay), ε = 1e-8, no momentum, no bias
correction; AdaDelta ρ = 0.95, ε = 1e-6 (Zeiler 2012). Tuned: the step size α of every optimizer
on a log grid, and the momentum μ of SGD with Nesterov momentum on a grid of 1 − μ (see
:class:`Grid`). For §6.1 every optimizer uses α_t = α/√t (t the step count); for §6.2 α is
constant.

Tuning protocols. The ``paper`` presets search every grid point over a few epochs
(:class:`TuneSpec`), what a short search concludes. The ``horizon`` presets (issue #18) add a
:class:`Protocol`: the criterion is read at the figure's last epoch, the mean of the average
minibatch cost over the last ``window`` epochs; successive halving (Jamieson & Talwalkar 2016)
runs every grid point to the first rung and keeps the best ``keep`` fraction (at least
``min_final``) for the next; the schedule (constant α or α/√t) is a searched axis, and the
runner-up of the last rung is run beside the choice. A spec without a protocol serialises
without the key, so the hashes of the ``quick`` and ``paper`` specs are those they always had.

Seeds: run ``k`` draws its initialisation, data order and dropout masks from three generators
spawned from ``SeedSequence([spec.base_seed, k])``; the initialisation depends on ``k`` only, so
all optimizers of a panel start from the same parameters (the paper's protocol).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import textwrap
from dataclasses import dataclass, field

#: Bump when the runner's semantics change (what is logged, how seeds are drawn): old results and
#: checkpoints then become stale even if the spec's fields are unchanged.
ENGINE_VERSION = 1

BATCH = 128  # minibatch size of every §6 experiment


@dataclass(frozen=True)
class DataSpec:
    """The training data. ``n_train`` keeps a fixed random subset (sorted indices drawn with
    ``default_rng(subset_seed)``) of the official training set; None keeps all of it.

    ``dataset``: ``"mnist"`` (pixels in [0, 1], 784 per image), ``"imdb"`` (binary bag of words over
    the ``num_words`` most frequent words, CSR) or ``"synthetic"`` (Gaussian classes, for tests:
    ``n_train`` examples, ``n_features``, ``n_classes``, drawn from ``default_rng(subset_seed)``).
    """

    dataset: str
    n_train: int | None = None
    subset_seed: int = 0
    num_words: int = 10_000
    n_features: int = 0
    n_classes: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """``kind``: ``"logreg"`` (multinomial, :class:`~adamlab.models.LogisticRegression`),
    ``"sparse_logreg"`` (binary, sparse input, :class:`~adamlab.models.SparseLogisticRegression`) or
    ``"mlp"`` (:class:`~adamlab.models.MLP` with ``sizes``). The cost is the mean cross-entropy plus
    (λ/2)‖W‖² with λ = ``weight_decay``; dropout rates apply in training only."""

    kind: str
    sizes: tuple[int, ...] = ()
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Grid:
    """A log-spaced grid of integer exponents: value(k) = 10**(k/per_decade), k in lo..hi.

    For the step size the value is α. For momentum (``kind="one_minus"``) it is 1 − μ, so
    μ = 1 − 10**(k/per_decade): k = −2, −3, −4 at per_decade 2 give μ ≈ 0.9, 0.968, 0.99. The
    grid is widened by whole exponents, within ``k_min`` .. ``k_max`` where they are set (for the
    momentum grid of the panels: 0.999 ≥ μ ≥ 0).
    """

    lo: int
    hi: int
    per_decade: int = 2
    kind: str = "log"  # "log" (the value itself) or "one_minus" (1 − value is log-spaced)
    k_min: int | None = None
    k_max: int | None = None

    def value(self, k: int) -> float:
        x = float(f"{10.0 ** (k / self.per_decade):.6g}")
        return float(f"{1.0 - x:.6g}") if self.kind == "one_minus" else x

    def exponents(self) -> tuple[int, ...]:
        return tuple(range(self.lo, self.hi + 1))

    def values(self) -> tuple[float, ...]:
        return tuple(self.value(k) for k in self.exponents())


@dataclass(frozen=True)
class OptimizerSpec:
    """One curve of a panel: ``name`` (its key, e.g. ``"adagrad+dropout"``), the class of
    :mod:`adamlab.optim` (``algorithm``), fixed hyper-parameters, the schedule (``"constant"`` or
    ``"inverse_sqrt"``: α_t = α/√t), the tuning grids, and whether the model's dropout is on."""

    name: str
    algorithm: str
    lr: Grid
    momentum: Grid | None = None
    fixed: tuple[tuple[str, float], ...] = ()
    schedule: str = "constant"
    dropout: bool = True


@dataclass(frozen=True)
class TuneSpec:
    """The step-size search: every grid point runs ``budget_epochs`` epochs at seed ``seed``; the
    criterion is the average minibatch training cost over the last budget epoch (the cost the
    figures plot; a diverged point scores +inf). A best point on an edge of a grid that may grow
    is widened by ``widen_by`` exponents, at most ``max_widenings`` times per optimizer."""

    budget_epochs: int
    seed: int = 0
    criterion: str = "train_cost_last_epoch"
    widen_by: int = 2
    max_widenings: int = 3


#: the step-size schedules: α_t = α, and α_t = α/√t (t the step count)
SCHEDULES = ("constant", "inverse_sqrt")


@dataclass(frozen=True)
class Protocol:
    """The search at the claim's horizon (issue #18; see the module docstring).

    ``rungs``: the epochs of each rung of successive halving, increasing; the last is the
    horizon, where the figure's claim is read (``(horizon,)``: the whole grid at full length).
    After each rung but the last, the best ``ceil(keep * n)`` of its ``n`` points (at least
    ``min_final``) continue to the next. The criterion at a rung of ``b`` epochs is the mean of the
    average minibatch training cost over epochs ``b - window + 1 .. b`` (fewer when ``b`` is
    shorter). ``schedules``: the schedules searched for every optimizer (a grid axis; the chosen
    hyper-parameters carry ``"schedule"``; empty: the optimizer's own). ``runner_up_seeds``: the
    seeds the runner-up of the last rung is run on (None: every seed of the panel)."""

    rungs: tuple[int, ...]
    keep: float = 1 / 3
    min_final: int = 2
    window: int = 3
    schedules: tuple[str, ...] = SCHEDULES
    runner_up_seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        r = self.rungs
        if not r or any(b < 1 for b in r) or list(r) != sorted(set(r)):
            raise ValueError(f"rungs must be increasing epoch counts, got {r}")
        if not 0 < self.keep <= 1 or self.min_final < 2 or self.window < 1:
            raise ValueError("keep must be in (0, 1], min_final at least 2 (a runner-up), "
                             f"window at least 1; got {self.keep}, {self.min_final}, "
                             f"{self.window}")
        bad = [x for x in self.schedules if x not in SCHEDULES]
        if bad:
            raise ValueError(f"unknown schedules {bad}; known: {', '.join(SCHEDULES)}")


@dataclass(frozen=True)
class PanelSpec:
    """Everything one figure panel at one preset depends on (see the module docstring)."""

    panel: str
    preset: str
    title: str
    data: DataSpec
    model: ModelSpec
    optimizers: tuple[OptimizerSpec, ...]
    epochs: int
    tune: TuneSpec
    seeds: tuple[int, ...] = (0, 1, 2)
    #: epochs of each seed, in the order of ``seeds`` (None: ``epochs`` for every seed); lets the
    #: expensive panels run every seed over the first epochs and one seed over all of them.
    seed_epochs: tuple[int, ...] | None = None
    batch_size: int = BATCH
    #: the full-training-set cost (no dropout) is evaluated before training, after epoch 1, after
    #: every ``eval_every``-th epoch and after the last one.
    eval_every: int = 1
    base_seed: int = 20150101
    shared_init: bool = True
    engine: int = ENGINE_VERSION
    notes: str = field(default="", compare=True)
    #: the horizon protocol (None: the short search of ``tune`` alone). Serialised only when set,
    #: so that specs without one keep the hashes of their committed results.
    protocol: Protocol | None = None

    # -- identity -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if self.protocol is None:
            del d["protocol"]
        return d

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def spec_hash(self) -> str:
        """SHA-256 (hex) of :meth:`canonical_json`: equal specs, equal hashes, on every machine."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    # -- lookups ------------------------------------------------------------------------------
    def optimizer(self, name: str) -> OptimizerSpec:
        for o in self.optimizers:
            if o.name == name:
                return o
        raise KeyError(f"panel {self.panel!r} has no optimizer {name!r}; it has "
                       f"{', '.join(o.name for o in self.optimizers)}")

    def epochs_of(self, seed: int) -> int:
        if seed not in self.seeds:
            raise KeyError(f"panel {self.panel!r} ({self.preset}) has no seed {seed}; its seeds "
                           f"are {list(self.seeds)}")
        if self.seed_epochs is None:
            return self.epochs
        return self.seed_epochs[self.seeds.index(seed)]

    def eval_epochs(self, epochs: int | None = None) -> tuple[int, ...]:
        """The epochs after which the full-training-set cost is evaluated (0 = before training)."""
        n = self.epochs if epochs is None else epochs
        return tuple(e for e in range(n + 1) if e in (0, 1, n) or e % self.eval_every == 0)

    def __post_init__(self) -> None:
        names = [o.name for o in self.optimizers]
        if len(set(names)) != len(names):
            raise ValueError(f"optimizer names must be unique, got {names}")
        if self.seed_epochs is not None and len(self.seed_epochs) != len(self.seeds):
            raise ValueError("seed_epochs must give one epoch count per seed")
        if self.tune.seed not in self.seeds:
            raise ValueError(f"the tuning seed {self.tune.seed} must be one of the seeds")
        p = self.protocol
        if p is not None:
            if p.rungs[-1] > self.epochs_of(self.tune.seed):
                raise ValueError(f"the last rung ({p.rungs[-1]} epochs) is longer than the "
                                 f"tuning seed's {self.epochs_of(self.tune.seed)} epochs")
            if p.runner_up_seeds is not None and not set(p.runner_up_seeds) <= set(self.seeds):
                raise ValueError(f"runner_up_seeds {p.runner_up_seeds} must be seeds of the "
                                 f"panel {self.seeds}")

    def runner_up_seeds(self) -> tuple[int, ...]:
        """The seeds the runner-up setting runs on (none without a protocol)."""
        if self.protocol is None:
            return ()
        r = self.protocol.runner_up_seeds
        return self.seeds if r is None else r


def describe(spec: PanelSpec, labels: dict | None = None) -> str:
    """What ``spec`` states, as the lines a chapter prints: data, model, regularisation, seeds,
    evaluation, tuning protocol, and each optimizer with its schedule, fixed values and grids.

    ``labels`` maps optimizer keys to the names the text uses (default: the keys).
    """
    def grid_text(g: Grid) -> str:
        what = "1 - mu" if g.kind == "one_minus" else "alpha"
        return f"{len(g.values())} values of {what} from 10^({g.lo}/{g.per_decade}) to " \
               f"10^({g.hi}/{g.per_decade})"

    d, m, t = spec.data, spec.model, spec.tune
    seeds = ", ".join(f"{k} ({spec.epochs_of(k)} epochs)" for k in spec.seeds)
    lines = [*textwrap.wrap(f"{spec.panel} ({spec.preset}): {spec.title}", 96,
                            subsequent_indent="    "),
             f"  data: {d.dataset}, {'all' if d.n_train is None else d.n_train} training "
             f"examples; model {m.kind} {m.sizes};",
             f"      L2 lambda = {m.weight_decay:g}; dropout {m.input_dropout:g} on the inputs"
             + (f", {m.hidden_dropout:g} on the hidden units" if m.kind == "mlp" else ""),
             f"  minibatch {spec.batch_size}; seeds {seeds};",
             f"      shared initialisation: {spec.shared_init}; full-training-set cost after "
             f"epochs {_ranges(spec.eval_epochs())}",
             f"  tuning: {t.budget_epochs} epoch(s) per grid point at seed {t.seed}; criterion "
             f"{t.criterion};",
             f"      widened by {t.widen_by} exponents at an edge, at most {t.max_widenings} "
             "times"]
    p = spec.protocol
    if p is not None:
        lines[-2] = (f"  tuning at the horizon, seed {t.seed}: rungs of "
                     f"{', '.join(map(str, p.rungs))} epochs, best {p.keep:.2g} (>= "
                     f"{p.min_final}) go on;")
        lines[-1] = (f"      criterion: mean cost of the last {p.window} epochs of a rung; "
                     f"widened by {t.widen_by} at an edge")
        lines.append(f"      schedules searched: {', '.join(p.schedules) or 'none'}; runner-up "
                     f"run on seeds {', '.join(map(str, spec.runner_up_seeds()))}")
    for o in spec.optimizers:
        fixed = ", ".join(f"{k} = {v:g}" for k, v in o.fixed) or "none"
        sched = "alpha_t = alpha/sqrt(t)" if o.schedule == "inverse_sqrt" else \
            f"{o.schedule} alpha"
        if p is not None and p.schedules:
            sched = "schedule searched"
        drop = "" if m.input_dropout == m.hidden_dropout == 0 else (
            ", dropout on" if o.dropout else ", dropout off")
        lines += [f"  - {(labels or {}).get(o.name, o.name)}: {o.algorithm}, {sched}{drop}",
                  f"      fixed: {fixed}", f"      step size: {grid_text(o.lr)}"]
        if o.momentum is not None:
            lines.append(f"      momentum: {grid_text(o.momentum)}")
    lines.append(f"  spec hash {spec.spec_hash()[:16]}")
    return "\n".join(lines)


def _ranges(epochs) -> str:
    """``0, 1, 10, 20, ..., 200`` for a long regular list, the list itself otherwise."""
    e = list(epochs)
    if len(e) > 6:
        return f"{e[0]}, {e[1]}, {e[2]}, {e[3]}, ..., {e[-1]}"
    return ", ".join(str(x) for x in e)


def workload(spec: PanelSpec) -> dict:
    """Epochs a full ``adamlab run`` of ``spec`` trains: tuning (without widenings) and runs, the
    runner-up's included. Under a protocol a rung continues its points from the last rung's
    checkpoints, so a point promoted to a rung of ``b`` epochs costs ``b`` minus the last."""
    p = spec.protocol
    tune = 0
    for o in spec.optimizers:
        n = len(o.lr.exponents()) * (1 if o.momentum is None else len(o.momentum.exponents()))
        if p is None:
            tune += n * spec.tune.budget_epochs
            continue
        n *= max(1, len(p.schedules))
        last = 0
        for b in p.rungs:
            tune += n * (b - last)
            last, n = b, survivors(n, p)
    seeds = [*spec.seeds, *spec.runner_up_seeds()]
    runs = len(spec.optimizers) * sum(spec.epochs_of(s) for s in seeds)
    evals = len(spec.optimizers) * sum(len(spec.eval_epochs(spec.epochs_of(s))) for s in seeds)
    return {"tune_epochs": tune, "run_epochs": runs, "evaluations": evals,
            "runs": len(spec.optimizers) * len(seeds)}


def survivors(n: int, protocol: Protocol) -> int:
    """How many of a rung's ``n`` points continue: the best ``keep`` fraction, at least
    ``min_final`` (and at most ``n``)."""
    return min(n, max(protocol.min_final, math.ceil(protocol.keep * n - 1e-9)))


def spec_from_dict(d: dict) -> PanelSpec:
    """Rebuild a :class:`PanelSpec` from :meth:`PanelSpec.to_dict` (e.g. a result file's spec)."""
    def grid(g):
        return None if g is None else Grid(**g)
    opts = tuple(OptimizerSpec(**{**o, "lr": grid(o["lr"]), "momentum": grid(o["momentum"]),
                                  "fixed": tuple(tuple(p) for p in o["fixed"])})
                 for o in d["optimizers"])
    prot = d.get("protocol")
    if prot is not None:
        prot = Protocol(**{**prot, "rungs": tuple(prot["rungs"]),
                           "schedules": tuple(prot["schedules"]),
                           "runner_up_seeds": None if prot["runner_up_seeds"] is None
                           else tuple(prot["runner_up_seeds"])})
    return PanelSpec(**{**d, "data": DataSpec(**d["data"]), "protocol": prot,
                        "model": ModelSpec(**{**d["model"], "sizes": tuple(d["model"]["sizes"])}),
                        "optimizers": opts, "tune": TuneSpec(**d["tune"]),
                        "seeds": tuple(d["seeds"]),
                        "seed_epochs": None if d["seed_epochs"] is None else tuple(d["seed_epochs"])})


# ----------------------------------------------------------------------------- the panels

ADAM = (("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8))
ADAGRAD = (("eps", 1e-8),)
RMSPROP = (("beta2", 0.9), ("eps", 1e-8))
ADADELTA = (("rho", 0.95), ("eps", 1e-6))
#: μ ≈ 0.99, 0.968, 0.9; widened at most to 0.999 and down to 0
NESTEROV_MU = Grid(-4, -2, per_decade=2, kind="one_minus", k_min=-6, k_max=0)


def _fig1_mnist(preset: str) -> PanelSpec:
    paper = preset in ("paper", "horizon")
    sched = "inverse_sqrt"
    return PanelSpec(
        panel="fig1-mnist", preset=preset,
        title="Figure 1 (left): L2-regularised multinomial logistic regression on MNIST",
        data=DataSpec("mnist", n_train=None if paper else 6000),
        model=ModelSpec("logreg", sizes=(784, 10), weight_decay=1e-4),
        optimizers=(
            OptimizerSpec("adam", "Adam", Grid(-7, -1), fixed=ADAM, schedule=sched),
            OptimizerSpec("sgdnesterov", "Nesterov", Grid(-5, 1), momentum=NESTEROV_MU,
                          schedule=sched),
            OptimizerSpec("adagrad", "AdaGrad", Grid(-5, 1), fixed=ADAGRAD, schedule=sched),
        ),
        epochs=45 if paper else 5,
        tune=TuneSpec(budget_epochs=3 if paper else 1),
        eval_every=1,
    )


def _fig1_imdb(preset: str) -> PanelSpec:
    paper = preset in ("paper", "horizon")
    sched = "inverse_sqrt"
    return PanelSpec(
        panel="fig1-imdb", preset=preset,
        title="Figure 1 (right): logistic regression on IMDB bag-of-words, 50% input dropout",
        data=DataSpec("imdb", n_train=None if paper else 5000, num_words=10_000),
        model=ModelSpec("sparse_logreg", sizes=(10_000, 1), input_dropout=0.5,
                        weight_decay=1e-4),
        optimizers=(
            OptimizerSpec("adagrad", "AdaGrad", Grid(-5, 1), fixed=ADAGRAD, schedule=sched,
                          dropout=False),
            OptimizerSpec("adagrad+dropout", "AdaGrad", Grid(-5, 1), fixed=ADAGRAD,
                          schedule=sched),
            OptimizerSpec("rmsprop+dropout", "RMSProp", Grid(-7, -1), fixed=RMSPROP,
                          schedule=sched),
            OptimizerSpec("sgdnesterov+dropout", "Nesterov", Grid(-5, 1), momentum=NESTEROV_MU,
                          schedule=sched),
            OptimizerSpec("adam+dropout", "Adam", Grid(-7, -1), fixed=ADAM, schedule=sched),
        ),
        epochs=160 if paper else 5,
        tune=TuneSpec(budget_epochs=5 if paper else 1),
        eval_every=1 if not paper else 2,
    )


def _fig2a_mlp(preset: str) -> PanelSpec:
    paper = preset in ("paper", "horizon")
    return PanelSpec(
        panel="fig2a-mlp", preset=preset,
        title="Figure 2a: MLP 784-1000-1000-10 with dropout on MNIST",
        data=DataSpec("mnist", n_train=None if paper else 2000),
        model=ModelSpec("mlp", sizes=(784, 1000, 1000, 10), input_dropout=0.2,
                        hidden_dropout=0.5, weight_decay=0.0),
        optimizers=(
            OptimizerSpec("adagrad", "AdaGrad", Grid(-6, 0), fixed=ADAGRAD),
            OptimizerSpec("rmsprop", "RMSProp", Grid(-9, -3), fixed=RMSPROP),
            OptimizerSpec("sgdnesterov", "Nesterov", Grid(-6, 0), momentum=NESTEROV_MU),
            OptimizerSpec("adadelta", "AdaDelta", Grid(-3, 2), fixed=ADADELTA),
            OptimizerSpec("adam", "Adam", Grid(-9, -3), fixed=ADAM),
        ),
        epochs=200 if paper else 3,
        tune=TuneSpec(budget_epochs=3 if paper else 1),
        seed_epochs=(200, 20, 20) if paper else None,
        eval_every=10 if paper else 1,
    )


def _fig2a_decay(preset: str) -> PanelSpec:
    """A follow-up to Figure 2a, not a panel of the paper: Adam with α_t = α/√t on fig2a-mlp's
    model, data, dropout and protocol. The paper does not say which schedule its §6.2 runs used;
    fig2a-mlp gives every optimizer a constant α, and this panel asks what the decay of §4 and §6.1
    changes for Adam. Seed 0 runs 50 epochs, seeds 1 and 2 the first 5."""
    base = _fig2a_mlp(preset)
    paper = preset == "paper"
    return dataclasses.replace(
        base, panel="fig2a-decay",
        title="Figure 2a follow-up: Adam with alpha_t = alpha/sqrt(t) on the MLP with dropout",
        optimizers=(OptimizerSpec("adam-decay", "Adam", Grid(-7, -1), fixed=ADAM,
                                  schedule="inverse_sqrt"),),
        epochs=50 if paper else 3,
        seed_epochs=(50, 5, 5) if paper else None,
        eval_every=10 if paper else 1,
    )


def _horizon(build, protocol: Protocol):
    """The ``horizon`` preset of a panel: its paper spec searched under ``protocol``."""
    def spec(preset: str) -> PanelSpec:
        base = build("paper")
        return dataclasses.replace(
            base, preset="horizon", protocol=protocol,
            tune=dataclasses.replace(base.tune, budget_epochs=protocol.rungs[-1],
                                     criterion=f"train_cost_mean_last_{protocol.window}_epochs"))
    return spec


#: panel name -> builder(preset) -> PanelSpec. Later panels (fig2b, fig3, fig4) add a builder here.
PANELS = {"fig1-mnist": _fig1_mnist, "fig1-imdb": _fig1_imdb, "fig2a-mlp": _fig2a_mlp,
          "fig2a-decay": _fig2a_decay}
PRESETS = ("quick", "paper", "horizon")
#: presets beyond quick and paper, per panel: the horizon protocol (issue #18). Figure 1 runs
#: take seconds, so its whole grid runs to the horizon; Fig 2a halves over 10, 50, 200 epochs
#: and runs its runner-up on seed 0 only.
EXTRA_PRESETS = {
    "fig1-mnist": {"horizon": _horizon(_fig1_mnist, Protocol(rungs=(45,)))},
    "fig1-imdb": {"horizon": _horizon(_fig1_imdb, Protocol(rungs=(160,)))},
    "fig2a-mlp": {"horizon": _horizon(_fig2a_mlp, Protocol(rungs=(10, 50, 200),
                                                           runner_up_seeds=(0,)))},
}


def presets_of(panel: str) -> tuple[str, ...]:
    """The presets ``panel`` has: quick, paper, and those of :data:`EXTRA_PRESETS`."""
    return ("quick", "paper", *EXTRA_PRESETS.get(panel, {}))


class SpecError(ValueError):
    """An unknown panel, preset or optimizer."""


def get_spec(panel: str, preset: str = "quick") -> PanelSpec:
    """The spec of ``panel`` at ``preset``; :class:`SpecError` naming the known ones otherwise."""
    if panel not in PANELS:
        raise SpecError(f"unknown panel {panel!r}; the panels are {', '.join(PANELS)}")
    if preset not in presets_of(panel):
        raise SpecError(f"unknown preset {preset!r} for {panel}; its presets are "
                        f"{', '.join(presets_of(panel))}")
    return EXTRA_PRESETS.get(panel, {}).get(preset, PANELS[panel])(preset)
