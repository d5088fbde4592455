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
    #: None: no search; every optimizer runs at the one point of its grid (:class:`GridSpec`)
    tune: TuneSpec | None
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
        if self.tune is not None and self.tune.seed not in self.seeds:
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
             f"      shared initialisation: {spec.shared_init}; "
             f"{'evaluated' if t is None else 'full-training-set cost'} after "
             f"epochs {_ranges(spec.eval_epochs())}"]
    if t is None:  # a fixed grid: its own summary instead of one entry per grid point
        from .grid import describe_grid
        return "\n".join(lines + describe_grid(spec) + [f"  spec hash {spec.spec_hash()[:16]}"])
    lines += [f"  tuning: {t.budget_epochs} epoch(s) per grid point at seed {t.seed}; criterion "
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
    checkpoints, so a point promoted to a rung of ``b`` epochs costs ``b`` minus the last; and the
    tuning seed's chosen and runner-up runs, when they are as long as the last rung, are the
    search's own runs (``runs_from_search``), written as results without training them again."""
    p = spec.protocol
    tune = 0
    for o in spec.optimizers if spec.tune is not None else ():
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
    # under a protocol the tuning seed's runs to the last rung are the search's own (reused)
    reused = [s for s in seeds if p is not None and s == spec.tune.seed
              and spec.epochs_of(s) == p.rungs[-1]]
    trained = list(seeds)
    for s in reused:
        trained.remove(s)
    runs = len(spec.optimizers) * sum(spec.epochs_of(s) for s in trained)
    evals = len(spec.optimizers) * sum(len(spec.eval_epochs(spec.epochs_of(s))) for s in trained)
    return {"tune_epochs": tune, "run_epochs": runs, "evaluations": evals,
            "runs": len(spec.optimizers) * len(seeds),
            "runs_from_search": len(spec.optimizers) * len(reused)}


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
    cls = GridSpec if "eval_samples" in d else PanelSpec
    extra = {} if prot is None else {"protocol": prot}
    return cls(**{**d, "data": DataSpec(**d["data"]), **extra,
                  "model": ModelSpec(**{**d["model"], "sizes": tuple(d["model"]["sizes"])}),
                  "optimizers": opts, "tune": None if d["tune"] is None else TuneSpec(**d["tune"]),
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


@dataclass(frozen=True)
class GridSpec(PanelSpec):
    """A panel whose grid is the experiment (``tune=None``): every optimizer entry is one grid
    point with a one-point step-size grid, run as given, with no search. Its extra fields:

    * ``step_log_every``: over the first ``step_log_epochs`` epochs the average minibatch cost is
      also logged every this many steps (``step_cost``, at the global steps ``step_cost_steps``;
      the windows restart at each epoch, so a resumed run logs the same points);
    * ``diverge_above``: a run whose evaluated cost is above this ceiling is stopped and recorded
      as diverged at that epoch (step null), as one with a non-finite cost or gradient is at its
      step; the result is written all the same. The first minibatch cost above it, which does not
      stop the run, is logged as ``above_ceiling`` (epoch, step, cost; null if none);
    * ``eval_n``, ``eval_samples``, ``eval_seed``: the evaluated cost is computed on ``eval_n``
      training examples (sorted indices drawn with ``default_rng(SeedSequence(eval_seed))``, all of
      them when there are fewer) with ``eval_samples`` latent samples per example, the same noise
      at every evaluation (see :func:`adamlab.experiments.grid.elbo_cost`).
    """

    step_log_every: int = 0
    step_log_epochs: int = 1
    diverge_above: float | None = None
    eval_n: int | None = None
    eval_samples: int = 1
    eval_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tune is not None or any(o.lr.lo != o.lr.hi or o.momentum is not None
                                        for o in self.optimizers):
            raise ValueError("a GridSpec runs its points as given: tune=None and a one-point "
                             "step-size grid (no momentum grid) per optimizer")


def _fig4(preset: str) -> PanelSpec:
    """Figure 4 (§6.4): the VAE of Kingma & Welling (2013) with and without bias correction.

    The grid is the experiment, not tuned: corrected (Adam) and uncorrected (Adam with
    ``bias_correction=False``, the paper's "RMSProp with momentum") × β1 ∈ {0, 0.9} ×
    β2 ∈ {0.99, 0.999, 0.9999} × α ∈ {1e-5, ..., 1e-1}: 60 optimizer entries, one run each per
    seed, all from the seed's one shared initialisation, data order and noise stream. Entry keys
    read ``adam-b1_0.9-b2_0.999-lr_1e-3`` (corrected) and ``nobc-b1_0.9-...`` (uncorrected).

    Choices the paper leaves open:

    * Data: MNIST binarised by a fixed threshold (a pixel is 1 where its [0, 1] intensity exceeds
      0.5). Kingma & Welling resampled a stochastic binarisation every epoch; the comparison here is
      between optimizers, and a fixed threshold gives every run, worker and resumed run the same
      data without another generator to seed and checkpoint.
    * Minibatch 128, the size of the paper's other §6 experiments (§6.4 gives none; Kingma &
      Welling used 100): 469 steps per epoch, the last of 96 examples.
    * Loss: the negative ELBO per example with one latent sample per example, as trained. Logged:
      the average minibatch value every epoch, and every 10 steps of the first epoch (the claim is
      about the early curve). Evaluated before training and after epochs 1, 10, 20, ..., 100 on
      10,000 training examples drawn by a fixed seed, with 10 latent samples each, accumulated in
      float64 (the same noise for every run and epoch).
    * Divergence: a non-finite cost or gradient (at its epoch and step), or an evaluated negative
      ELBO above 1000 nats at an evaluation epoch (1, 10, 20, ...); the run stops there. A VAE
      that predicts 0.5 for every pixel costs 784·ln 2 ≈ 543 nats and the shared initialisation
      of seed 0 about 652; one epoch of a working run brings it below 170. The ceiling is not
      applied to single minibatches: uncorrected runs spike early and come back (in the quick
      preset one passed 1000 nats in its first steps and averaged 374 over the epoch, another
      averaged 3e15 and still ended the epoch at 484), and whether they come back is what
      Figure 4 shows. The first minibatch above the ceiling is logged instead (``above_ceiling``).
    * ε = 1e-8 (Algorithm 1's default) for both.

    Seeds: seed 0 over 100 epochs (the paper reads the loss after 10 and 100 epochs); a later
    preset can add seeds over the first 10 epochs through ``seed_epochs``. The quick preset runs
    the same 60 points on 2,000 images for 2 epochs (16 steps each), cost logged every 4 steps,
    evaluated on 1,000 of them with one sample.

    Cost (one BLAS thread, the project machine under a load average of 4-7 on its 2 cores,
    measured with the runner over 3 epochs): an epoch of 469 steps 4.4-5.7 s (10-12 ms a step),
    an evaluation 2.3-2.8 s; a 100-epoch run about 530 s with its 12 evaluations, so the 60 runs
    of seed 0 take about 9 h of one core, about 4.5 h with 2 workers on 2 free cores. The quick
    preset took 18-34 s with 2 workers on the same machine.
    """
    paper = preset == "paper"
    points = tuple(
        OptimizerSpec(f"{'adam' if corrected else 'nobc'}-b1_{beta1:g}-b2_{beta2:g}-lr_1e{k}",
                      "Adam", Grid(k, k, per_decade=1),
                      fixed=(("beta1", beta1), ("beta2", beta2), ("eps", 1e-8),
                             ("bias_correction", corrected)))
        for corrected in (True, False) for beta1 in (0.0, 0.9) for beta2 in (0.99, 0.999, 0.9999)
        for k in range(-5, 0))
    return GridSpec(
        panel="fig4", preset=preset,
        title="Figure 4: VAE on binarised MNIST, Adam with and without bias correction",
        data=DataSpec("mnist-binary", n_train=None if paper else 2000),
        model=ModelSpec("vae", sizes=(784, 500, 50)),
        optimizers=points,
        epochs=100 if paper else 2,
        tune=None,
        seeds=(0,),
        eval_every=10 if paper else 1,
        step_log_every=10 if paper else 4,
        diverge_above=1000.0,
        eval_n=10_000 if paper else 1000,
        eval_samples=10 if paper else 1,
    )


def _fig4_seeds(preset: str) -> PanelSpec:
    """Figure 4's extra seeds: the paper grid on seeds 1 and 2 over its first 10 epochs, for the
    grid points where corrected and uncorrected are close after 10 epochs on seed 0 (run them
    with ``--optimizer``). Everything else is the paper preset's, so each seed's 60 points share
    that seed's initialisation and data order, and seed 0's first 10 epochs (in ``paper``) are
    the third member of each interval."""
    return dataclasses.replace(_fig4("paper"), preset=preset, epochs=10, seeds=(1, 2))


#: panel name -> builder(preset) -> PanelSpec. Later panels (fig2b, fig3, fig4) add a builder here.
PANELS = {"fig1-mnist": _fig1_mnist, "fig1-imdb": _fig1_imdb, "fig2a-mlp": _fig2a_mlp,
          "fig2a-decay": _fig2a_decay, "fig4": _fig4}
PRESETS = ("quick", "paper", "horizon", "seeds")
#: presets beyond quick and paper, per panel: the horizon protocol (issue #18). Figure 1 runs
#: take seconds, so its whole grid runs to the horizon; Fig 2a halves over 10, 50, 200 epochs
#: and runs its runner-up on seed 0 only.
EXTRA_PRESETS = {
    "fig1-mnist": {"horizon": _horizon(_fig1_mnist, Protocol(rungs=(45,)))},
    "fig1-imdb": {"horizon": _horizon(_fig1_imdb, Protocol(rungs=(160,)))},
    "fig2a-mlp": {"horizon": _horizon(_fig2a_mlp, Protocol(rungs=(10, 50, 200),
                                                           runner_up_seeds=(0,)))},
    "fig4": {"seeds": _fig4_seeds},
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
