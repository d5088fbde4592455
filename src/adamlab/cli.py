"""The ``adamlab`` command line: ``adamlab data fetch {mnist,imdb,cifar10,all}``, ``adamlab data check``.

``main`` dispatches subcommands; each command group registers itself in :data:`COMMANDS` with a
function that adds its sub-parser, so later groups (``adamlab experiments ...``) plug in the same way.
"""

from __future__ import annotations

import argparse
import sys


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="fetch and check the datasets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download, verify and extract a dataset")
    f.add_argument("dataset", choices=["mnist", "imdb", "cifar10", "all"])
    f.set_defaults(func=_data_fetch)
    c = dsub.add_parser("check", help="list what is present and verified")
    c.set_defaults(func=_data_check)


def _data_fetch(args) -> int:
    from . import data

    names = list(data.DATASETS) if args.dataset == "all" else [args.dataset]
    failed = False
    for name in names:
        try:
            paths = data.fetch(name)
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
    return 1 if failed else 0


def _data_check(args) -> int:
    from . import data

    root = data.data_dir()
    print(f"data directory: {root}")
    rows = data.check(root)
    width = max(len(r.path) for r in rows)
    for r in rows:
        note = f"  ({r.note})" if r.note else ""
        print(f"{r.dataset:8s} {r.path:<{width}}  {r.status}{note}")
    return 1 if any(r.status.startswith("CORRUPT") for r in rows) else 0


COMMANDS = [_add_data]

from .experiments.cli import COMMANDS as _EXPERIMENT_COMMANDS  # noqa: E402 - list, run, tune, status

COMMANDS += _EXPERIMENT_COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adamlab", description="Adam (Kingma & Ba, 2015), executable.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
