"""``adamlab list | run | tune | status``: the §6 experiments from the command line.

    adamlab list                                   panels, presets, which results exist, stale or not
    adamlab tune PANEL [--preset P] [--optimizer NAME ...] [--resume]
    adamlab run PANEL [--preset P] [--optimizer NAME ...] [--seed K ...] [--resume] [--force]
                      [--workers N | --scheduler ADDRESS]
    adamlab status                                 runs in progress (checkpoints) and results

Every command takes ``--results DIR`` (default: see :func:`adamlab.experiments.results.results_dir`).
Errors (an unknown panel, preset, optimizer or seed, a results folder that cannot be written, a
checkpoint of another experiment, an unreachable scheduler) print one line on stderr and exit 2.
``list`` and ``status`` on a results folder that does not exist say so in one line and exit 1; a
result, tuning record or checkpoint that is not valid is shown as ``INVALID`` (the file, the
problem, the fix) and the rest is listed as usual.
A sweep stopped by SIGINT (Ctrl-C) or SIGTERM, or by a fault (a full disk, a lost cluster), stops
its workers at once, says what it kept (finished results and grid points, checkpoints) and the
command that continues, and exits 130, 143 or 2; a second Ctrl-C exits at once.
This module imports nothing heavy: ``adamlab --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading

#: kept equal to specs.PANELS by a test (this module imports nothing heavy)
PANEL_NAMES = ("fig1-mnist", "fig1-imdb", "fig2a-mlp", "fig2a-decay", "fig4")
PRESET_NAMES = ("quick", "paper", "horizon", "seeds")


def _common(p) -> None:
    p.add_argument("--results", metavar="DIR", default=None,
                   help="results folder (default: results/ of the checkout, or $ADAMLAB_RESULTS)")


def _panel_args(p) -> None:
    p.add_argument("panel", choices=PANEL_NAMES, help="the figure panel")
    p.add_argument("--preset", choices=PRESET_NAMES, default="quick",
                   help="quick (subsets, few epochs), paper (the paper's scale, a 3-epoch "
                        "search) or horizon (the paper's scale, searched at the figure's last "
                        "epoch; fig1-mnist, fig1-imdb, fig2a-mlp) or seeds (fig4: seeds 1 and 2 "
                        "over the first 10 epochs); default quick")
    p.add_argument("--optimizer", action="append", metavar="NAME",
                   help="only this optimizer (repeatable; default: all of the panel's)")
    _exec_args(p)
    _common(p)


def _exec_args(p) -> None:
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes, one BLAS thread each (default: the number of "
                        "cores; 1 runs in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on a Dask distributed cluster (e.g. tcp://host:8786)")


def _resume_arg(p, text) -> None:
    p.add_argument("--resume", action="store_true", help=text)


def _add_list(sub) -> None:
    p = sub.add_parser("list", help="the experiment panels, their presets and their results")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=_cmd_list)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="tune (if needed) and run a panel's experiments")
    _panel_args(p)
    p.add_argument("--seed", type=int, action="append", metavar="K",
                   help="only this seed (repeatable; default: all of the preset's)")
    _resume_arg(p, "continue interrupted runs (and searches) from their checkpoints")
    p.add_argument("--force", action="store_true",
                   help="rerun runs that already have a fresh result (default: skip them)")
    p.set_defaults(func=_cmd_run)


def _add_tune(sub) -> None:
    p = sub.add_parser("tune", help="the step-size search of a panel (rewrites its tuning records)")
    _panel_args(p)
    _resume_arg(p, "continue interrupted searches from the grid points they finished")
    p.set_defaults(func=_cmd_tune)


def _add_status(sub) -> None:
    p = sub.add_parser("status", help="runs in progress (checkpoints) and results written")
    _common(p)
    p.set_defaults(func=_cmd_status)


COMMANDS = [_add_list, _add_run, _add_tune, _add_status]


# ----------------------------------------------------------------------------- handlers


def _err(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _say(msg: str) -> None:
    print(msg, flush=True)


def _no_results(root) -> bool:
    """Say so (one line on stderr) when the results folder is missing or not a folder."""
    if root.is_dir():
        return False
    what = "is not a folder" if root.exists() else "does not exist"
    print(f"error: the results folder {root} {what} (nothing has been run there); run `adamlab "
          "run PANEL` to create it, or point --results DIR or $ADAMLAB_RESULTS at the folder that "
          "holds the results", file=sys.stderr)
    return True


def _problems(rows) -> None:
    """One line per invalid file, after the table: the file, what is wrong, the fix."""
    for r in rows:
        for line in r["invalid"]:
            print(f"INVALID {line}")


def _cmd_list(args) -> int:
    from .results import results_dir, scan

    root = results_dir(args.results)
    if _no_results(root):
        return 1
    rows = scan(args.results)
    if args.json:
        print(json.dumps({"results": str(root), "panels": rows}, indent=1))
        return 0
    print(f"results folder: {root}")
    print(f"{'panel':11s} {'preset':7s} {'spec hash':12s} {'epochs':>6s} {'seeds':>5s} "
          f"{'tuned':>7s} {'results':>9s} {'stale':>5s} {'invalid':>7s}  optimizers")
    for r in rows:
        grid = r["tuned"] is None  # a fixed grid (fig4): nothing to tune, one entry per point
        tuned = f"{'-':>7s}" if grid else f"{r['tuned']:3d}/{len(r['optimizers']):<3d}"
        names = f"{len(r['optimizers'])} grid points" if grid else ", ".join(r["optimizers"])
        print(f"{r['panel']:11s} {r['preset']:7s} {r['hash']:12s} {r['epochs']:6d} "
              f"{len(r['seeds']):5d} {tuned} "
              f"{r['fresh']:4d}/{r['expected']:<4d} {r['stale']:5d} {len(r['invalid']):7d}  "
              f"{names}")
    if any(r["runner_up_expected"] for r in rows):
        print("results count the runner-up runs too: "
              + "; ".join(f"{r['panel']} {r['preset']} {r['runner_up_fresh']}/"
                          f"{r['runner_up_expected']}" for r in rows if r["runner_up_expected"]))
    _problems(rows)
    return 0


def _setup(args):
    """(spec, results folder, executor, workers) or raise ValueError/KeyError with the message.
    Repeated ``--optimizer`` and ``--seed`` values count once; ``--workers`` is capped at the
    most calls the sweep submits at once."""
    from .driver import plan
    from .executors import default_workers, make_executor
    from .results import check_writable, panel_dir, results_dir
    from .specs import get_spec

    spec = get_spec(args.panel, args.preset)
    args.optimizer = list(dict.fromkeys(args.optimizer)) if args.optimizer else None
    for name in args.optimizer or ():
        spec.optimizer(name)
    if getattr(args, "seed", None):
        args.seed = list(dict.fromkeys(args.seed))
    for seed in getattr(args, "seed", None) or ():
        spec.epochs_of(seed)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    root = results_dir(args.results)
    check_writable(panel_dir(root, spec))
    workers = args.workers if args.workers is not None else default_workers()
    if not args.scheduler:
        jobs = plan(spec, root, optimizers=args.optimizer, seeds=getattr(args, "seed", None),
                    force=getattr(args, "force", False), retune=args.command == "tune")
        if workers > max(1, jobs):
            if args.workers is not None:
                _say(f"note: --workers {workers} is more than the {jobs} calls this sweep runs "
                     f"at once; starting {max(1, jobs)}")
            workers = max(1, jobs)
    return spec, root, make_executor(workers, args.scheduler), workers


def _again(args, kept) -> str:
    """The command line that continues a stopped sweep."""
    from .specs import get_spec

    words = ["adamlab", args.command, args.panel, "--preset", args.preset]
    optimizers, seeds = args.optimizer, getattr(args, "seed", None)
    if args.command == "tune":  # the searches left
        names = args.optimizer or [o.name for o in get_spec(args.panel, args.preset).optimizers]
        optimizers = [n for n in names if n not in kept.tuned]
    elif args.force and (kept.todo or kept.todo_runner_up):  # only what is left, or --force
        left = kept.todo + kept.todo_runner_up                # would redo what finished
        optimizers = list(dict.fromkeys(n for n, _ in left))
        seeds = sorted({s for _, s in left})
    for name in optimizers or ():
        words += ["--optimizer", name]
    for seed in seeds or ():
        words += ["--seed", str(seed)]
    for flag, value in (("--workers", args.workers), ("--scheduler", args.scheduler),
                        ("--results", args.results)):
        if value is not None:
            words += [flag, str(value)]
    if getattr(args, "force", False):
        words.append("--force")
    if kept.resumable():
        words.append("--resume")
    return " ".join(shlex.quote(w) for w in words)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _exit_now(signum, frame) -> None:
    """A second signal: kill the workers and exit without cleaning up."""
    import multiprocessing

    for p in multiprocessing.active_children():
        p.kill()
    os._exit(128 + signum)


def _interrupt(signum, frame) -> None:
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    raise Interrupted(signum)


def _guard(fn, args) -> int:
    from concurrent.futures import CancelledError

    from ..data import DataError
    from .driver import Kept
    from .results import ResultsDirError, StaleResultError
    from .runner import CheckpointError
    from .specs import SpecError
    from .tuning import TuningError

    args.kept = kept = Kept()
    main = threading.current_thread() is threading.main_thread()
    interrupted = False
    if main:
        old = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return fn(args)
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        then = (f"continue with: {_again(args, kept)}" if kept.resumable()
                else f"nothing to resume from; run again with: {_again(args, kept)}")
        print(f"interrupted ({signal.Signals(signum).name}); {kept.summary()}; {then}",
              file=sys.stderr, flush=True)
        interrupted = True
        return 128 + signum
    except KeyError as e:  # an unknown optimizer or seed
        return _err(e.args[0] if e.args else str(e))
    except DataError as e:  # missing or corrupt data, in this process or in a worker
        return _err(str(e))
    except OSError as e:  # a full disk, a file that cannot be replaced, a folder gone
        what = f"cannot write {e.filename}: {e.strerror or e}" if e.filename else str(e)
        return _err(f"{what}; {kept.summary()}; once fixed, continue with: {_again(args, kept)}")
    except (SpecError, ValueError, ResultsDirError, CheckpointError, StaleResultError,
            TuningError) as e:
        return _err(str(e))
    except (RuntimeError, CancelledError) as e:  # a lost cluster, a broken pool
        return _err(f"{e}; {kept.summary()}; continue with: {_again(args, kept)}"
                    if kept.results or kept.resumable() else str(e))
    finally:
        # After an interrupt _exit_now stays installed: a second signal while the interpreter
        # shuts down (joining the pool's threads) exits at once, without a traceback from there.
        if main and not interrupted:
            for sig, handler in old.items():
                signal.signal(sig, handler)


def _cmd_run(args) -> int:
    return _guard(_run, args)


def _run(args) -> int:
    from .driver import run_panel
    from .runner import want_progress

    spec, root, ex, workers = _setup(args)
    with ex:
        run_panel(spec, ex, root, optimizers=args.optimizer, seeds=args.seed,
                  resume=args.resume, force=args.force, progress=want_progress(),
                  workers=workers, say=_say, kept=args.kept)
    return 0


def _cmd_tune(args) -> int:
    return _guard(_tune, args)


def _tune(args) -> int:
    from .driver import tune_panel

    spec, root, ex, _ = _setup(args)
    with ex:
        tune_panel(spec, ex, root, optimizers=args.optimizer, retune=True, resume=args.resume,
                   say=_say, kept=args.kept)
    return 0


def _cmd_status(args) -> int:
    from .executors import default_workers
    from .results import checkpoints_dir, results_dir, scan
    from .runner import CheckpointError, read_checkpoint
    from .specs import SpecError, get_spec
    from .tuning import partial_points

    root = results_dir(args.results)
    if _no_results(root):
        return 1
    ck = checkpoints_dir(root)
    print(f"results folder: {root}\ncheckpoints:    {ck}\ncores: {default_workers()}")
    running = sorted(ck.glob("*/*/*/checkpoint.json")) if ck.is_dir() else []
    if running:
        print("runs with a checkpoint (interrupted or in progress; continue with --resume):")
    for p in running:
        try:
            meta = read_checkpoint(p.parent)
        except CheckpointError as e:
            print(f"  INVALID {e}")
            continue
        ident = meta["identity"]
        role = ident.get("role", "chosen")
        what = f"{ident['panel']} {ident['preset']} {ident['optimizer']} seed {ident['seed']}" \
            + (" (runner-up)" if role == "runner_up" else "")
        name = f"{ident['optimizer']}-seed{ident['seed']}" \
            + ("-runnerup" if role == "runner_up" else "")
        if p.parent.relative_to(ck).parts != (ident["panel"], ident["preset"], name):
            print(f"  INVALID checkpoint {p} holds the run of {what}, not the one its folder "
                  f"names: delete {p.parent} and rerun without --resume")
            continue
        print(f"  {what}: epoch {meta['epoch']}/{ident['epochs']}")
    if not running:
        print("no run in progress")
    searches = sorted(ck.glob("*/*/tune-*.json")) if ck.is_dir() else []
    if searches:
        print("searches with saved grid points (interrupted or in progress; continue with "
              "--resume):")
    for p in searches:
        panel, preset = p.parent.parent.name, p.parent.name
        try:
            points = partial_points(p, get_spec(panel, preset))
        except (CheckpointError, SpecError, KeyError) as e:
            print(f"  INVALID {e}" if isinstance(e, CheckpointError) else
                  f"  {p}: not a search of a known panel and preset")
            continue
        rungs = sorted({k[3] + 1 for k in points if len(k) == 4})
        print(f"  {panel} {preset} {p.stem[len('tune-'):]}: {len(points)} grid points"
              + (f" (rungs {', '.join(map(str, rungs))})" if rungs else ""))
    rows = scan(args.results)
    for r in rows:
        if r["fresh"] or r["stale"] or r["tuned"] or r["invalid"]:
            extra = f" ({r['runner_up_fresh']}/{r['runner_up_expected']} of the runner-up)" \
                if r["runner_up_expected"] else ""
            tuned = "no tuning" if r["tuned"] is None else \
                f"{r['tuned']}/{len(r['optimizers'])} tuned"
            print(f"{r['panel']} {r['preset']}: {r['fresh']}/{r['expected']} results{extra}, "
                  f"{r['stale']} stale, {len(r['invalid'])} invalid, {tuned}")
    _problems(rows)
    return 0
