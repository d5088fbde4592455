"""The ``adamlab`` command line: ``adamlab data fetch {mnist,imdb,cifar10,all} [--from DIR]``,
``adamlab data check [mnist|imdb|cifar10|all ...]``, ``adamlab --version``; also ``python -m adamlab``.

``main`` dispatches subcommands; each command group registers itself in :data:`COMMANDS` with a
function that adds its sub-parser, so later groups (``adamlab experiments ...``) plug in the same way.
Output to a closed pipe (``adamlab data check | head -1``) ends the command quietly, exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="fetch and check the datasets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download (or copy from a local copy), verify and extract a "
                                      "dataset")
    f.add_argument("dataset", choices=["mnist", "imdb", "cifar10", "all"])
    f.add_argument("--from", dest="source", metavar="DIR", default=None,
                   help="copy from this local copy of the official files (laid out as the data "
                        "directory; files may be gzipped) instead of downloading")
    f.set_defaults(func=_data_fetch)
    c = dsub.add_parser("check", help="list what is present and verified; exit 1 unless every "
                                      "dataset asked for is complete and verified")
    c.add_argument("datasets", nargs="*", metavar="dataset",  # checked in _data_check: argparse
                   help="mnist, imdb, cifar10 or all (the default)")  # rejects choices with nargs="*"
    c.set_defaults(func=_data_check)


def _data_fetch(args) -> int:
    from . import data

    names = list(data.DATASETS) if args.dataset == "all" else [args.dataset]
    if args.source is not None and not os.path.isdir(args.source):
        print(f"error: --from {args.source}: no such folder", file=sys.stderr)
        return 2
    failed = False
    for name in names:
        try:
            paths = data.fetch(name) if args.source is None else data.fetch_from(name, args.source)
        except data.DataError as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            failed = True
            continue
        except OSError as e:  # no permission, disk full, a file where a folder should be
            where = e.filename if e.filename is not None else data.data_dir()
            print(f"error: {name}: cannot write {where}: {e.strerror or e}", file=sys.stderr)
            failed = True
            continue
        for p in paths:
            print(f"ok  {p}")
        if args.source is not None:  # what the local copy lacked (the CI copy's CIFAR-10 test set)
            lacking = [r.path for r in data.problems(data.check(None, [name]))[name]]
            if lacking:
                print(f"note: {name}: {args.source} does not hold {_some(lacking)}")
    return 1 if failed else 0


def _data_check(args) -> int:
    from . import data

    unknown = [n for n in args.datasets if n not in (*data.DATASETS, "all")]
    if unknown:
        print(f"adamlab data check: error: unknown dataset {unknown[0]!r} (choose from "
              f"{', '.join(repr(n) for n in (*data.DATASETS, 'all'))})", file=sys.stderr)
        return 2
    names = list(data.DATASETS) if not args.datasets or "all" in args.datasets else list(dict.fromkeys(args.datasets))
    root = data.data_dir()
    print(f"data directory: {root}")
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        print(f"error: the data directory {root} {what}; run `adamlab data fetch "
              f"{' '.join(names) if len(names) < len(data.DATASETS) else 'all'}` or set "
              f"ADAMLAB_DATA to the folder that holds the datasets", file=sys.stderr)
        return 1
    try:
        rows = data.check(root, names)
    except data.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    width = max(len(r.path) for r in rows)
    for r in rows:
        note = f"  ({r.note})" if r.note else ""
        print(f"{r.dataset:8s} {r.path:<{width}}  {r.status}{note}")
    failed = False
    for name, bad in data.problems(rows).items():
        if not bad:
            print(f"{name}: complete and verified")
            continue
        failed = True
        corrupt = [r.path for r in bad if r.status.startswith("CORRUPT")]
        absent = [r.path for r in bad if not r.status.startswith("CORRUPT")]
        what = "; ".join(part for part in (
            f"corrupt: {', '.join(corrupt)} (delete these)" if corrupt else "",
            f"missing: {_some(absent)}" if absent else "") if part)
        print(f"{name}: NOT READY, {what}; run `adamlab data fetch {name}`")
    return 1 if failed else 0


def _some(paths: list[str], shown: int = 3) -> str:
    more = len(paths) - shown
    return ", ".join(paths[:shown]) + (f" and {more} more" if more > 0 else "")


COMMANDS = [_add_data]

from .experiments.cli import COMMANDS as _EXPERIMENT_COMMANDS  # noqa: E402 - list, run, tune, status

COMMANDS += _EXPERIMENT_COMMANDS


def _check_settings() -> int:
    """2, with a one-line error, if ``ADAMLAB_OFFLINE`` holds a value that is not understood
    (every command refuses it, whether or not it would touch the data); else 0."""
    from .data._store import SettingError, offline

    try:
        offline()
    except SettingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adamlab", description="Adam (Kingma & Ba, 2015), executable.")
    parser.add_argument("--version", action="version", version=f"adamlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)  # may print (--help, --version) and exit
            code = _check_settings() or args.func(args)
        finally:
            sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (`adamlab data check | head -1`): stop quietly. Python would flush
        # stdout again at exit and print a traceback, so point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


if __name__ == "__main__":
    sys.exit(main())
