"""The runner: one (panel, optimizer, hyper-parameters, seed) training run, resumable bit for bit.

What is logged (what the §6 figures plot):

* ``train_cost[e-1]``: the average minibatch training cost over epoch ``e`` (the mean cross-entropy
  plus (λ/2)‖W‖², with dropout on where the curve has it), weighted by minibatch size, i.e. the
  average of the cost each step minimised;
* ``full_cost``: the cost on the whole training set without dropout, at the epochs
  ``full_cost_epochs`` of :meth:`~adamlab.experiments.specs.PanelSpec.eval_epochs` (0 = the
  initialisation);
* ``full_penalty``: the (λ/2)‖W‖² part of each ``full_cost`` (the negative log-likelihood that
  Figure 1 plots is the difference);
* timings, never compared: ``epoch_seconds`` (each epoch, its evaluation included) and
  ``eval_seconds`` (each evaluation).

A :class:`~adamlab.experiments.specs.GridSpec` (Figure 4's VAE) logs as ``full_cost`` the negative
ELBO on its evaluation set (:func:`~adamlab.experiments.grid.elbo_cost`), and adds ``step_cost``
and ``step_cost_steps`` (the average minibatch cost every ``step_log_every`` steps of the first
epochs) and ``above_ceiling`` (the first minibatch cost above ``diverge_above``, or null).

A run whose cost or gradient becomes non-finite (or, for a GridSpec, whose evaluated cost is above
its ceiling ``diverge_above``) is stopped and recorded as diverged (the epoch, the step and the
reason), never dropped: its curves hold the epochs it completed.

Each epoch visits the training set in the order of a fresh permutation drawn from the run's
data-order generator; a minibatch is gathered by indexing with 128 positions of it (a copy of the
minibatch only, never of the set). Dropout masks come from the run's dropout generator.

Checkpoints (``checkpoint_dir``): at the end of an epoch (every epoch, or the first epoch end
``checkpoint_every_s`` seconds after the last checkpoint) the parameters and the optimizer's state go to
``state-<epoch>.npz`` and everything else (identity of the run, step counter, the generators'
``bit_generator.state``, the log) to ``checkpoint.json``, each written to a temporary file and moved
into place with ``os.replace``; the JSON, written last, names its ``.npz``, so a crash between the
two leaves the previous checkpoint valid. Nothing is pickled (``np.load(allow_pickle=False)``). A
resumed run repeats the interrupted epoch from its start with the generators as they were, so it
produces exactly the numbers of an uninterrupted run. With ``extend=True`` a run continues the
checkpoint of the same run over fewer epochs (a tuning rung continuing to a longer budget): its
prefix is the shorter run's, so the curve is that of an uninterrupted run over the longer budget
(the shorter run's last evaluation stays in the log).

The hyper-parameters may carry the schedule (``"schedule"``: ``"constant"`` or
``"inverse_sqrt"``) where the spec's protocol searches it; otherwise the optimizer's own applies.
A run of the runner-up setting (``role="runner_up"``) records ``role`` in its identity and its
record, and has its own checkpoint folder.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from .. import optim
from ..models import MLP, LogisticRegression, SparseLogisticRegression
from ..models.base import as_minibatch
from .grid import EVALUATORS, binarised_mnist, build_vae
from .specs import OptimizerSpec, PanelSpec

__all__ = ["train_run", "load_data", "build_model", "build_optimizer", "generators",
           "full_cost", "CheckpointError", "checkpoint_path", "hyper_points"]

EVAL_CHUNK = 10_000  # rows per forward pass of the full-training-set evaluation
#: A checkpoint is written at the end of an epoch once this many seconds have passed since the
#: last one (or the start): every epoch of a Fig 2a run (8-28 s), not the 0.1 s epochs of §6.1.
CHECKPOINT_EVERY_S = float(os.environ.get("ADAMLAB_CHECKPOINT_EVERY_S", "30"))
#: Outside a terminal a progress line is printed at the end of an epoch once this many seconds
#: have passed since the run's last line (and after its first and last epoch).
PROGRESS_EVERY_S = float(os.environ.get("ADAMLAB_PROGRESS_EVERY_S", "10"))


class CheckpointError(RuntimeError):
    """A checkpoint that belongs to another run or spec, cannot be read, or does not hold
    together."""


# ----------------------------------------------------------------------------- data

_DATA: dict = {}


def _synthetic(data):
    rng = np.random.default_rng(data.subset_seed)
    centers = rng.standard_normal((data.n_classes, data.n_features))
    y = rng.integers(0, data.n_classes, data.n_train)
    x = centers[y] + 2.0 * rng.standard_normal((data.n_train, data.n_features))
    return x.astype(np.float32), y


def _mnist(data):
    from ..data import load_mnist
    m = load_mnist()
    return m.x_train, m.y_train


def _imdb(data):
    from ..data import load_imdb_bow
    d = load_imdb_bow(data.num_words)
    return d.x_train, d.y_train


#: dataset name -> loader(DataSpec) -> (x_train, y_train). Later panels add theirs (CIFAR-10 for
#: Figure 3). ``synthetic`` draws its own ``n_train`` examples; the others are subset below.
DATASETS = {"synthetic": _synthetic, "mnist": _mnist, "imdb": _imdb,
            "mnist-binary": binarised_mnist}


def load_data(data) -> tuple:
    """``(x, y)`` of a :class:`~adamlab.experiments.specs.DataSpec`, cached per process."""
    if data in _DATA:
        return _DATA[data]
    if data.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {data.dataset!r}; known: {', '.join(DATASETS)}")
    x, y = DATASETS[data.dataset](data)
    if data.dataset != "synthetic" and data.n_train is not None:
        n = x.shape[0]
        if not 1 <= data.n_train <= n:
            raise ValueError(f"n_train must be in [1, {n}], got {data.n_train}")
        idx = np.sort(np.random.default_rng(data.subset_seed).choice(n, data.n_train,
                                                                   replace=False))
        x, y = x[idx], y[idx]
    _DATA[data] = (x, y)
    return x, y


# ----------------------------------------------------------------------------- construction


def generators(spec: PanelSpec, seed: int, optimizer: str) -> dict[str, np.random.Generator]:
    """The run's generators ``init``, ``order``, ``dropout`` from ``SeedSequence([base_seed, seed])``.

    With ``spec.shared_init`` they do not depend on the optimizer: every optimizer of a panel starts
    from the same parameters and sees the same data order and dropout stream.
    """
    entropy = [spec.base_seed, seed]
    if not spec.shared_init:
        entropy.append(int.from_bytes(optimizer.encode(), "little") % (1 << 63))
    init, order, dropout = np.random.SeedSequence(entropy).spawn(3)
    return {"init": np.random.default_rng(init), "order": np.random.default_rng(order),
            "dropout": np.random.default_rng(dropout)}


def _logreg(m, p_in, p_hid, init):
    return LogisticRegression(m.sizes[0], m.sizes[1], weight_decay=m.weight_decay, rng=init)


def _sparse_logreg(m, p_in, p_hid, init):
    return SparseLogisticRegression(m.sizes[0], input_dropout=p_in, weight_decay=m.weight_decay,
                                    rng=init)


def _mlp(m, p_in, p_hid, init):
    return MLP(m.sizes, input_dropout=p_in, hidden_dropout=p_hid, weight_decay=m.weight_decay,
               rng=init)


#: model kind -> builder(ModelSpec, input dropout, hidden dropout, init generator). Later panels
#: add theirs (the CNN of Figure 3, the VAE of Figure 4); any :class:`~adamlab.models.base.Model`
#: with ``loss_and_grads``, ``forward(train=False)`` and ``loss`` works with the runner.
MODELS = {"logreg": _logreg, "sparse_logreg": _sparse_logreg, "mlp": _mlp, "vae": build_vae}


def build_model(spec: PanelSpec, opt: OptimizerSpec, init: np.random.Generator):
    """The panel's model, its dropout on unless the curve ``opt`` has ``dropout=False``."""
    m = spec.model
    if m.kind not in MODELS:
        raise ValueError(f"unknown model kind {m.kind!r}; known: {', '.join(MODELS)}")
    p_in = m.input_dropout if opt.dropout else 0.0
    p_hid = m.hidden_dropout if opt.dropout else 0.0
    return MODELS[m.kind](m, p_in, p_hid, init)


def schedule_of(opt: OptimizerSpec, hyper: dict) -> str:
    """The schedule of a run: the searched one in ``hyper``, else the optimizer's own."""
    return hyper.get("schedule", opt.schedule)


def build_optimizer(opt: OptimizerSpec, hyper: dict):
    """The optimizer of ``opt`` at the tuned ``hyper`` (``lr``, ``momentum`` where tuned, and
    ``schedule`` where searched)."""
    cls = getattr(optim, opt.algorithm)
    kwargs = dict(opt.fixed)
    kwargs.update({k: v for k, v in hyper.items() if k not in ("lr", "schedule")})
    lr = hyper["lr"]
    schedule = schedule_of(opt, hyper)
    if schedule == "inverse_sqrt":
        lr = optim.inverse_sqrt(lr)
    elif schedule != "constant":
        raise ValueError(f"unknown schedule {schedule!r}")
    return cls(lr=lr, **kwargs)


def hyper_points(opt: OptimizerSpec, lr_ks, mom_ks=None, schedule: str | None = None) -> list[dict]:
    """Every grid point ``{"lr": ..., ["momentum": ...], ["schedule": ...]}`` of the exponents
    given (``schedule`` only where it is searched)."""
    extra = {} if schedule is None else {"schedule": schedule}
    if opt.momentum is None:
        return [{"lr": opt.lr.value(k), **extra} for k in lr_ks]
    return [{"lr": opt.lr.value(k), "momentum": opt.momentum.value(j), **extra}
            for k in lr_ks for j in mom_ks]


def normal_hyper(hyper: dict) -> dict:
    """``hyper`` with sorted keys and float values (the schedule, a name, stays a name)."""
    return {k: (v if k == "schedule" else float(v)) for k, v in sorted(hyper.items())}


# ----------------------------------------------------------------------------- evaluation


def _is_sparse(x) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def penalty(model) -> float:
    """(λ/2)·Σ‖W‖², the weight-decay term of the cost."""
    lam = model.weight_decay
    if lam == 0.0:
        return 0.0
    total = 0.0
    for key in model.decayed:
        flat = model.params[key].reshape(-1)
        total += float(np.dot(flat, flat))
    return 0.5 * lam * total


def full_cost(model, x, y) -> float:
    """The cost on all of ``(x, y)`` without dropout: mean cross-entropy + (λ/2)‖W‖²."""
    n = x.shape[0]
    total = 0.0
    for i in range(0, n, EVAL_CHUNK):
        xc = x[i:i + EVAL_CHUNK]
        xc = xc.astype(model.dtype) if _is_sparse(xc) and xc.dtype != model.dtype \
            else (xc if _is_sparse(xc) else as_minibatch(xc, model.dtype))
        out = model.forward(xc, train=False)
        value, _ = model.loss(out, y[i:i + EVAL_CHUNK])
        total += float(value) * xc.shape[0]
    return total / n + penalty(model)


def evaluated_cost(spec: PanelSpec, model, x, y) -> float:
    """The cost logged as ``full_cost``: :func:`full_cost`, or the model kind's own evaluation
    (:data:`adamlab.experiments.grid.EVALUATORS`: the VAE's negative ELBO on its evaluation set)."""
    if spec.model.kind in EVALUATORS:
        return EVALUATORS[spec.model.kind](spec, model, x, y)
    return full_cost(model, x, y)


# ----------------------------------------------------------------------------- checkpoints


#: the roles of a panel's runs: the chosen setting, and the runner-up of the search (issue #18)
ROLES = ("chosen", "runner_up")


def run_name(optimizer: str, seed: int, role: str = "chosen") -> str:
    """``adam-seed0`` for the chosen setting, ``adam-seed0-runnerup`` for the runner-up: the name of
    its result file (plus ``.json``) and of its checkpoint folder."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    return f"{optimizer}-seed{seed}" + ("-runnerup" if role == "runner_up" else "")


def checkpoint_path(root, spec: PanelSpec, optimizer: str, seed: int,
                    role: str = "chosen") -> Path:
    return Path(root) / spec.panel / spec.preset / run_name(optimizer, seed, role)


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: The temporary files of :func:`_atomic_write_bytes` (and the results folder's write probe):
#: ``.<name>.<pid>.tmp``.
_TEMP_RE = re.compile(r"^\..*[.-](\d+)\.tmp$")


def _alive(pid: int) -> bool:
    """True if process ``pid`` exists on this machine (or cannot be checked)."""
    if os.name == "nt":  # os.kill would terminate it
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid <= 0xFFFFFFFF  # another user's process; a number no pid can be is dead
    return True


def remove_stale_temps(folder) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer (the pid in their name) is no
    longer alive: what a process killed in the middle of a write left. Others are kept."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_RE.match(name)
        if m and not _alive(int(m.group(1))):
            try:
                os.unlink(Path(folder) / name)
                removed.append(Path(folder) / name)
            except OSError:
                pass
    return removed


def atomic_write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    data = (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
    _atomic_write_bytes(Path(path), lambda f: f.write(data))


def _identity(spec, optimizer, hyper, seed, epochs, role="chosen") -> dict:
    ident = {"spec_hash": spec.spec_hash(), "panel": spec.panel, "preset": spec.preset,
             "optimizer": optimizer, "hyper": hyper, "seed": seed, "epochs": epochs}
    if role != "chosen":  # the chosen runs keep the identity their checkpoints always had
        ident["role"] = role
    return ident


def numerics(model) -> dict:
    """What a run's numbers depend on beyond its spec: BLAS and update threads, dtype, engine
    version, NumPy. A checkpoint records it; a resume under other values is refused."""
    from .provenance import openblas_info
    from .specs import ENGINE_VERSION

    blas = openblas_info().get("threads")
    if blas is None:  # not OpenBLAS: the variables the worker set
        blas = next((os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                              "MKL_NUM_THREADS") if os.environ.get(k)), "default")
    return {"blas_threads": blas, "optim_threads": optim.get_num_threads(),
            "dtype": str(np.dtype(model.dtype)), "engine": ENGINE_VERSION,
            "numpy": np.__version__}


def _save(where: Path, ident, model, opt, gens, log, epoch) -> None:
    where.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(where)
    sd = opt.state_dict()
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    for name, slots in sd["state"].items():
        for slot, a in slots.items():
            arrays[f"opt/{name}/{slot}"] = a
    npz = f"state-{epoch:05d}.npz"
    _atomic_write_bytes(where / npz, lambda f: np.savez(f, **arrays))
    meta = {"identity": ident, "npz": npz, "epoch": epoch, "t": sd["t"],
            "optimizer_class": sd["optimizer"],
            "rng": {k: g.bit_generator.state for k, g in gens.items()}, "log": log}
    atomic_write_json(where / "checkpoint.json", meta)
    for old in where.glob("state-*.npz"):
        if old.name != npz:
            old.unlink(missing_ok=True)


def _fix(where: Path) -> str:
    return f"delete {where} and rerun without --resume"


def _who(ident: dict) -> str:
    return (f"{ident.get('panel')} {ident.get('preset')} {ident.get('optimizer')} seed "
            f"{ident.get('seed')} at {ident.get('hyper')} over {ident.get('epochs')} epochs "
            f"(spec hash {str(ident.get('spec_hash'))[:12]})")


def _checkpoint_problem(meta) -> str | None:
    """What does not hold together in a checkpoint's JSON (None if nothing): its keys and types,
    its epoch against the run's epochs, its step count, its log and the ``.npz`` it names."""
    if not isinstance(meta, dict):
        return "it is not a JSON object"
    missing = [k for k in ("identity", "npz", "epoch", "t", "optimizer_class", "rng", "log")
               if k not in meta]
    if missing:
        return f"it lacks {', '.join(missing)}"
    ident, epoch, t, log = meta["identity"], meta["epoch"], meta["t"], meta["log"]
    if not isinstance(ident, dict) or not all(k in ident for k in (
            "spec_hash", "panel", "preset", "optimizer", "hyper", "seed", "epochs")):
        return "its identity is incomplete"
    ints = {"epoch": epoch, "t": t, "identity.epochs": ident["epochs"]}
    for key, v in ints.items():
        if not isinstance(v, int) or isinstance(v, bool):
            return f"{key} is {v!r}, not an integer"
    if not 1 <= epoch <= ident["epochs"]:
        return f"epoch {epoch} is not within the run's 1..{ident['epochs']}"
    if not isinstance(log, dict) or not isinstance(meta["rng"], dict):
        return "its log or generator states are not mappings"
    lists = ("train_cost", "epoch_seconds", "full_cost_epochs", "full_cost", "full_penalty",
             "eval_seconds", "resumed_at_epochs")
    for key in lists:
        if not isinstance(log.get(key), list):
            return f"log.{key} is not a list"
    for key in ("train_cost", "epoch_seconds"):
        if len(log[key]) != epoch:
            return f"log.{key} has {len(log[key])} entries, but the checkpoint is at epoch {epoch}"
    evals = log["full_cost_epochs"]
    if not all(isinstance(e, int) and 0 <= e <= epoch for e in evals) \
            or evals != sorted(set(evals)):
        return f"log.full_cost_epochs {str(evals)[:60]} are not increasing epochs up to {epoch}"
    for key in ("full_cost", "full_penalty", "eval_seconds"):
        if len(log[key]) != len(evals):
            return f"log.{key} has {len(log[key])} entries, log.full_cost_epochs {len(evals)}"
    if t <= 0 or t % epoch:
        return (f"its step count t = {t} is not a whole number of steps per epoch times epoch "
                f"{epoch}")
    if meta["npz"] != f"state-{epoch:05d}.npz":
        return f"it names the arrays {meta['npz']!r}, not those of epoch {epoch}"
    return None


def read_checkpoint(where: Path) -> dict | None:
    """The checkpoint's JSON, or None when there is none. :class:`CheckpointError` names the
    file and the fix when it cannot be read or does not hold together (see
    :func:`_checkpoint_problem`)."""
    where = Path(where)
    path = where / "checkpoint.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise CheckpointError(f"cannot read the checkpoint {path} ({e.strerror or e}); "
                              f"{_fix(where)}") from None
    except ValueError:
        raise CheckpointError(f"checkpoint {path} is not valid JSON (truncated?): "
                              f"{_fix(where)}") from None
    problem = _checkpoint_problem(meta)
    if problem:
        raise CheckpointError(f"checkpoint {path} does not hold together: {problem}; "
                              f"{_fix(where)}")
    return meta


def _load_arrays(where: Path, npz: str) -> dict:
    """The arrays of the checkpoint's ``.npz`` (no pickle), or :class:`CheckpointError`."""
    path = where / npz
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}, named by {where / 'checkpoint.json'}, is "
                              f"missing: {_fix(where)}")
    bad = f"checkpoint {path} is not a valid .npz archive (corrupt or truncated)"
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{bad}: {_fix(where)}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{bad}: {type(e).__name__}; {_fix(where)}") from None


def _restore(where: Path, meta, ident, model, opt, gens, extend: bool = False) -> None:
    theirs = meta.get("identity", {})
    if extend and theirs.get("epochs", 0) <= ident["epochs"] and \
            {**theirs, "epochs": ident["epochs"]} == ident:
        pass  # the same run over fewer epochs: its prefix is this run's
    elif theirs != ident:
        diff = sorted(k for k in set(ident) | set(theirs) if theirs.get(k) != ident.get(k))
        raise CheckpointError(
            f"the checkpoint in {where} belongs to another experiment: it is the run of "
            f"{_who(theirs)}, this is {_who(ident)} (they differ in {', '.join(diff)}); "
            f"refusing to continue it. Run without --resume to start afresh (it overwrites the "
            f"checkpoint), or delete {where}.")
    arrays = _load_arrays(where, meta["npz"])
    path = where / meta["npz"]
    for k, p in model.params.items():
        a = arrays.get(f"param/{k}")
        if a is None or a.shape != p.shape or a.dtype != p.dtype:
            raise CheckpointError(f"checkpoint {path} has no parameter {k!r} of shape "
                                  f"{p.shape} and dtype {p.dtype}: {_fix(where)}")
        p[...] = a
    state: dict = {}
    for key, a in arrays.items():
        if key.startswith("opt/"):
            _, name, slot = key.split("/", 2)
            if name not in model.params or a.shape != model.params[name].shape:
                raise CheckpointError(f"checkpoint {path} holds optimizer state {key!r} of shape "
                                      f"{a.shape} that fits no parameter: {_fix(where)}")
            state.setdefault(name, {})[slot] = a
    try:
        opt.load_state_dict({"optimizer": meta["optimizer_class"], "t": int(meta["t"]),
                             "state": state, "hyperparams": opt.hyperparams()})
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"the optimizer state in {where} cannot be restored: {e}; "
                              f"{_fix(where)}") from None
    try:
        for k, g in gens.items():
            g.bit_generator.state = meta["rng"][k]
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"the generator states in {where / 'checkpoint.json'} cannot be "
                              f"restored ({type(e).__name__}: {e}); {_fix(where)}") from None


# ----------------------------------------------------------------------------- progress


def want_progress() -> str | None:
    """``"bar"`` in a terminal; ``"lines"`` when stderr is a file or a pipe (nohup, CI): a line
    per run every :data:`PROGRESS_EVERY_S` seconds; None inside a Jupyter kernel or with
    ``$ADAMLAB_NO_PROGRESS``."""
    if os.environ.get("ADAMLAB_NO_PROGRESS") or "ipykernel" in sys.modules:
        return None
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return "bar" if tty and not os.environ.get("CI") else "lines"


class _Lines:
    """The bar's interface, printing ``panel optimizer seed K: epoch e/E, cost c`` lines."""

    def __init__(self, total, desc) -> None:
        self.total, self.desc, self.last = total, desc, -math.inf
        self.n, self.cost = 0, None

    def set_postfix(self, cost) -> None:
        self.cost = cost

    def update(self, k) -> None:
        self.n += k
        now = time.monotonic()
        if self.n in (1, self.total) or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            print(f"{self.desc}: epoch {self.n}/{self.total}, cost {self.cost}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def _bar(enabled, total, initial, desc, position):
    if not enabled:
        return None
    if enabled == "lines":
        bar = _Lines(total, desc.replace(" seed", " seed "))
        bar.n = initial
        return bar
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, position=position, leave=position == 0,
                unit="epoch", dynamic_ncols=True)


# ----------------------------------------------------------------------------- the run


def train_run(spec: PanelSpec, optimizer: str, hyper: dict, seed: int, *,
              epochs: int | None = None, checkpoint_dir=None, resume: bool = False,
              checkpoint_every_s: float = CHECKPOINT_EVERY_S, on_step=None,
              progress: bool = False, position: int = 0, role: str = "chosen",
              extend: bool = False, final_checkpoint: bool = False) -> dict:
    """Train one run and return its record (JSON-ready; see the module docstring).

    ``epochs`` defaults to the seed's epoch count in the spec (a tuning run passes its budget).
    ``checkpoint_dir``: the folder of this run's checkpoint (None: no checkpoints), written at the
    end of an epoch when ``checkpoint_every_s`` seconds have passed since the last (0: after
    every epoch). ``resume``:
    continue from the checkpoint there, refusing one of another spec or run
    (:class:`CheckpointError`); without it, a run starts afresh. ``on_step(epoch, step)`` is called
    after every step (tests use it to interrupt a run in the middle of an epoch). ``role``: the
    chosen setting or the runner-up (recorded). ``extend``: with ``resume``, also continue a
    checkpoint of this run over fewer epochs. ``final_checkpoint``: also checkpoint after the last
    epoch (a tuning rung, which a later rung continues).
    """
    from .provenance import machine_info

    _match_blas_threads()
    opt_spec = spec.optimizer(optimizer)
    if epochs is None:
        epochs = spec.epochs_of(seed)
    hyper = normal_hyper(hyper)
    run_name(optimizer, seed, role)  # ValueError on an unknown role
    x, y = load_data(spec.data)
    n = x.shape[0]
    batch = spec.batch_size
    gens = generators(spec, seed, optimizer)
    model = build_model(spec, opt_spec, gens["init"])
    opt = build_optimizer(opt_spec, hyper)
    ident = {**_identity(spec, optimizer, hyper, seed, epochs, role),
             "numerics": numerics(model)}
    eval_at = set(spec.eval_epochs(epochs))
    where = None if checkpoint_dir is None else Path(checkpoint_dir)

    log = {"train_cost": [], "full_cost_epochs": [], "full_cost": [], "epoch_seconds": [],
           "full_penalty": [], "eval_seconds": [], "diverged": None, "resumed_at_epochs": []}
    # A GridSpec's extras: the cost every `log_every` steps of the first epochs, a ceiling.
    log_every, log_epochs = getattr(spec, "step_log_every", 0), getattr(spec, "step_log_epochs", 0)
    ceiling = getattr(spec, "diverge_above", None)
    if log_every:
        log.update(step_cost=[], step_cost_steps=[])
    if ceiling is not None:
        log["above_ceiling"] = None  # the first minibatch cost above it: epoch, step, cost
    start = 0
    meta = read_checkpoint(where) if (where is not None and resume) else None
    if meta is not None:
        theirs = meta.get("identity", {}).get("numerics")
        if theirs != ident["numerics"]:
            diff = ", ".join(f"{k} {(theirs or {}).get(k)} (now {v})"
                             for k, v in ident["numerics"].items() if (theirs or {}).get(k) != v)
            raise CheckpointError(
                f"the checkpoint in {where} was computed with other settings ({diff}); its "
                "continuation would not be the curve of an uninterrupted run. Resume it the way "
                "it was started (the CLI runs every run with one BLAS thread), or run without "
                "--resume to start afresh.")
        steps = -(-n // batch)
        if int(meta["t"]) != int(meta["epoch"]) * steps:
            raise CheckpointError(
                f"checkpoint {where / 'checkpoint.json'} does not hold together: {meta['t']} "
                f"steps after epoch {meta['epoch']}, where an epoch is {steps} steps; "
                f"{_fix(where)}")
        _restore(where, meta, ident, model, opt, gens, extend=extend)
        log = meta["log"]
        start = int(meta["epoch"])
        log["resumed_at_epochs"].append(start)
    elif 0 in eval_at:
        t0 = time.perf_counter()
        log["full_cost_epochs"].append(0)
        log["full_cost"].append(_finite_or_none(evaluated_cost(spec, model, x, y)))
        log["full_penalty"].append(_finite_or_none(penalty(model)))
        log["eval_seconds"].append(time.perf_counter() - t0)

    bar = _bar(progress, epochs, start, f"{spec.panel} {optimizer} seed{seed}", position)
    t_run = last_save = time.perf_counter()
    try:
        for epoch in range(start + 1, epochs + 1):
            if log["diverged"] is not None:
                break
            t0 = time.perf_counter()
            order = gens["order"].permutation(n)
            total = 0.0
            window, window_n = 0.0, 0  # the step log's current window (restarts each epoch)
            drop = gens["dropout"]
            for step, s in enumerate(range(0, n, batch), start=1):
                idx = order[s:s + batch]
                xb, yb = x[idx], y[idx]
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    cost = float(model.loss_and_grads(xb, yb, rng=drop))
                    reason = None
                    if not math.isfinite(cost):
                        reason = f"non-finite minibatch cost {cost}"
                    else:
                        try:
                            opt.update(model.params, model.grads)
                        except (FloatingPointError, OverflowError) as e:  # non-finite grads
                            reason = str(e)
                if reason is not None:
                    log["diverged"] = {"epoch": epoch, "step": step, "reason": reason}
                    break
                total += cost * len(idx)
                if ceiling is not None and cost > ceiling and log["above_ceiling"] is None:
                    log["above_ceiling"] = {"epoch": epoch, "step": step, "cost": cost}
                if log_every and epoch <= log_epochs:
                    window += cost * len(idx)
                    window_n += len(idx)
                    if step % log_every == 0:
                        log["step_cost"].append(window / window_n)
                        log["step_cost_steps"].append((epoch - 1) * -(-n // batch) + step)
                        window, window_n = 0.0, 0
                if on_step is not None:
                    on_step(epoch, step)
            if log["diverged"] is not None:
                break
            log["train_cost"].append(total / n)
            if epoch in eval_at:
                t1 = time.perf_counter()
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    c = evaluated_cost(spec, model, x, y)
                    pen = penalty(model)
                log["eval_seconds"].append(time.perf_counter() - t1)
                log["full_cost_epochs"].append(epoch)
                log["full_cost"].append(_finite_or_none(c))
                log["full_penalty"].append(_finite_or_none(pen))
                if not math.isfinite(c):
                    log["diverged"] = {"epoch": epoch, "step": None,
                                       "reason": f"non-finite full training cost {c}"}
                elif ceiling is not None and c > ceiling:
                    log["diverged"] = {"epoch": epoch, "step": None,
                                       "reason": f"evaluated cost {c:.6g} above the ceiling "
                                                 f"{ceiling:g}"}
            log["epoch_seconds"].append(time.perf_counter() - t0)
            if where is not None and (time.perf_counter() - last_save >= checkpoint_every_s
                                      or (final_checkpoint and epoch == epochs)):
                _save(where, ident, model, opt, gens, log, epoch)
                last_save = time.perf_counter()
            if bar is not None:
                bar.set_postfix(cost=f"{log['train_cost'][-1]:.4g}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"panel": spec.panel, "preset": spec.preset, "spec_hash": spec.spec_hash(),
            "optimizer": optimizer, "algorithm": opt_spec.algorithm,
            "schedule": schedule_of(opt_spec, hyper), "role": role, "hyper": hyper, "seed": seed, "epochs": epochs,
            "completed_epochs": len(log["train_cost"]), **log,
            "steps_per_epoch": -(-n // batch), "n_train": int(n),
            "wall_seconds": time.perf_counter() - t_run, "machine": machine_info()}


def _match_blas_threads() -> None:
    """A worker with one BLAS thread (a Dask nanny sets ``OPENBLAS_NUM_THREADS=1``) also updates
    with one thread, unless ``ADAMLAB_NUM_THREADS`` says otherwise (results do not change)."""
    if not os.environ.get("ADAMLAB_NUM_THREADS") and os.environ.get("OPENBLAS_NUM_THREADS") == "1":
        if optim.get_num_threads() != 1:
            optim.set_num_threads(1)


def _finite_or_none(v: float):
    return v if math.isfinite(v) else None
