"""The ``ato`` command: every subcommand comes from a plugin (``ato_register_commands``)."""

from __future__ import annotations

import argparse
import sys

from ato.errors import AtoError


def build_parser() -> argparse.ArgumentParser:
    from ato.plugins.manager import commands

    parser = argparse.ArgumentParser(prog="ato", description="Ato experiment management.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cls in sorted(commands().items()):
        p = sub.add_parser(name, help=getattr(cls, "help", ""))
        cls.add_arguments(p)
        p.set_defaults(_command=cls)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_command", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._command.run(args) or 0)
    except AtoError as e:
        print(f"ato {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
