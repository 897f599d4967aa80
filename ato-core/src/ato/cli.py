"""The ``ato`` command: every subcommand comes from a plugin (``ato_register_commands``).

Only the chosen subcommand's ``add_arguments`` runs, so a broken command plugin cannot
break ``ato --help`` or any other subcommand.  A subcommand whose distribution is missing,
disabled or broken is named with the fix instead of argparse's "invalid choice".
"""

from __future__ import annotations

import argparse
import sys

from ato.errors import AtoError, PluginError


def _requested(argv: list[str]) -> str | None:
    """The subcommand named by ``argv``: its first token that is not an option."""
    return next((token for token in argv if not token.startswith("-")), None)


def _epilog() -> str:
    """Commands of Ato's distributions that ``ato`` lacks, each with why (not installed,
    disabled, broken) and the fix, then a count of plugin problems."""
    from ato.plugins.manager import (
        PROVIDERS,
        commands,
        distribution_state,
        enable_hint,
        failures,
    )

    available = commands()
    groups: dict[str, list[str]] = {}
    for name, dist in sorted(PROVIDERS["command"].items()):
        if name in available:
            continue
        state, records = distribution_state(dist)
        if state == "missing":
            heading, fix = "commands of distributions that are not installed:", f"pip install {dist}"
        elif state == "disabled":
            heading = "commands of installed distributions whose plugin is disabled:"
            fix = f"{dist} (disabled by ATO_DISABLE_PLUGINS; {enable_hint(records)})"
        elif state == "broken":
            heading = "commands of installed distributions whose plugin is broken:"
            fix = f"{dist} (broken; see 'ato plugins')"
        else:  # loaded without this command, or installed without an entry point
            heading = "commands that installed distributions do not provide:"
            fix = f"{dist} (see 'ato plugins')"
        groups.setdefault(heading, []).append(f"  {name:<10}{fix}")
    lines = []
    for heading, rows in groups.items():
        lines += [heading, *rows]
    broken = failures()
    if broken:
        lines.append(f"{len(broken)} plugin problem(s): run 'ato plugins' for details")
    return "\n".join(lines)


def build_parser(command: str | None = None, only: type | None = None) -> argparse.ArgumentParser:
    """The ``ato`` parser: one sub-parser per valid command; only ``command``'s (all, when
    ``None``) receive their arguments.  Without a command (``ato --help``) the help also
    lists commands whose distribution is missing and counts plugin problems; that costs
    loading every seam, so a named command skips it.  With ``only`` (the class of
    ``command``, from :func:`ato.plugins.manager.command_for`) the parser has that one
    sub-parser, and no other command's module is imported.  Raises
    :class:`ato.errors.PluginError` when a command's ``add_arguments`` fails."""
    from ato.plugins.manager import _one_line, commands, provider

    parser = argparse.ArgumentParser(prog="ato", description="Ato experiment management.",
                                     epilog=None if command else _epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = {command: only} if command and only is not None else commands()
    for name, cls in sorted(chosen.items()):
        text = str(getattr(cls, "help", "") or "").replace("%", "%%")
        p = sub.add_parser(name, help=text, description=text or None)
        p.set_defaults(_command=cls, _parser=p)
        if command is None or command == name:
            try:
                cls.add_arguments(p)
            except Exception as e:
                who = provider("command", cls).who()
                raise PluginError(f"'ato {name}' is unusable: {who}: "
                                  f"{cls.__qualname__}.add_arguments(parser) raised "
                                  f"{_one_line(e)}") from e
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``ato``; returns the exit status (2 for a user mistake or a broken plugin,
    printed as one line)."""
    from ato.plugins.manager import command_for, command_problem

    argv = list(sys.argv[1:] if argv is None else argv)
    name = _requested(argv)
    try:
        # A named command that exists is looked up without importing the other commands'
        # modules (start-up time of `ato ui`); otherwise every plugin is asked, for the
        # full "invalid choice" list or the reason the command is unavailable.
        cls = command_for(name) if name is not None else None
        problem = command_problem(name) if name is not None and cls is None else None
        if problem is not None:
            raise problem
        parser = build_parser(name or "", only=cls)  # no command named: no add_arguments runs
    except AtoError as e:
        print(f"ato: error: {e}", file=sys.stderr)
        return e.exit_code
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command's own usage ("ato ui: error: …"), not the top level's
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "_command", None) is None:
        parser.print_help()
        return 2
    try:
        status = args._command.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except AtoError as e:
        print(f"ato {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `ato … | head`: the reader has what it wanted
        return _closed_stdout()
    except KeyboardInterrupt:  # Ctrl-C: one line, the status of a process ended by SIGINT
        print(f"ato {args.command}: interrupted", file=sys.stderr)
        return 130
    if status is None:
        return 0
    if isinstance(status, bool) or not isinstance(status, int):
        from ato.plugins.manager import provider

        who = provider("command", args._command).who()
        print(f"ato {args.command}: error: {who}: {args._command.__qualname__}.run returned "
              f"{status!r}, not an exit status (an int)", file=sys.stderr)
        return PluginError.exit_code
    return status


def _closed_stdout() -> int:
    """Silence stdout after its reader went away (no traceback, no error at exit); returns
    141, the status of a command ended by SIGPIPE."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
