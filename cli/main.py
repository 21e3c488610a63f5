"""Entry point of the ``backprop`` command.

Subcommands are discovered: every module in :mod:`backprop.cli.commands` that defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` becomes one, so adding
a command is adding one file.  Bad input raises :class:`UserError` anywhere below; it is
printed here as one line on stderr with exit status 2, never as a traceback; so are input nested
too deeply for the JSON/TOML readers (RecursionError) and a network too big for memory.
SIGTERM and SIGHUP are handled like Ctrl-C: the run unwinds, so atomic writes remove their
temporary files and the trainers' temporary folder is removed at exit.  Warnings (NumPy's
"overflow encountered in matmul", ...) are gathered and printed as one line at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import signal
import sys
import warnings

from backprop import __version__
from backprop.core.errors import UserError

from . import commands


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; of only the one ``argv`` starts with when it names one
    (``backprop derive`` need not import the trainers, codegen and verify: ~0.15 s)."""
    parser = _Parser(
        prog="backprop",
        description="Symbolic backpropagation: derive every gradient of a neural network in the "
        "notes' notation, verify hand derivations, generate and run NumPy trainers.",
        epilog="Run 'backprop COMMAND --help' for one command. With no arguments, "
        "'backprop derive' derives the notes' 2-2-1 example.",
    )
    parser.add_argument("--version", action="version", version=f"backprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    first = argv[0].replace("-", "_") if argv else None
    modules = [importlib.import_module(f"{commands.__name__}.{name}")
               for name in ([first] if first in names else names)]
    if len(modules) == 1 and modules[0].NAME != argv[0]:  # a module named unlike its command
        modules = [importlib.import_module(f"{commands.__name__}.{name}") for name in names]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.NAME)):
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


class Terminated(BaseException):
    """Raised by the SIGTERM/SIGHUP handler: unwinds like KeyboardInterrupt (cleanup runs)."""


#: Signals that end a run the way Ctrl-C does, with exit status 128 + the signal's number.
TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_terminated(signum, frame):
    raise Terminated(signum)


#: Imported before the handlers are installed: an exception raised by a signal handler while
#: a C extension initialises (numpy.random's Cython modules, imported lazily by the first
#: ``default_rng``) can be swallowed there, and the run would go on as if never signalled.
PRELOAD = ("numpy.random",)


@contextlib.contextmanager
def _signals_unwind():
    """SIGTERM/SIGHUP raise :class:`Terminated` while the command runs (main thread only)."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    previous = {}
    try:
        for sig in TERMINATING:
            previous[sig] = signal.signal(sig, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: At most this many distinct warnings are named in the one warning line.
WARNINGS_SHOWN = 3


def _warning_line(command: str, caught) -> str | None:
    """Every warning of the run as one line (distinct messages, in order of first appearance)."""
    seen = list(dict.fromkeys(str(w.message).splitlines()[0] if str(w.message) else w.category.__name__
                              for w in caught))
    if not seen:
        return None
    text = "; ".join(seen[:WARNINGS_SHOWN])
    if len(seen) > WARNINGS_SHOWN:
        text += f"; and {len(seen) - WARNINGS_SHOWN} more"
    if any(issubclass(w.category, RuntimeWarning) for w in caught):
        text += " (numbers beyond float range: results may hold inf or NaN)"
    return f"backprop {command}: warning: {text}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = _run(args)
    line = _warning_line(args.command, caught)
    if line:
        try:
            print(line, file=sys.stderr)
        except (BrokenPipeError, ValueError):
            pass
    return status


def _run(args) -> int:
    """The command, with every way it can end turned into an exit status (see the module doc)."""
    try:
        with _signals_unwind():
            return int(args.run(args) or 0)
    except UserError as exc:
        print(f"backprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"backprop {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        signum = exc.args[0]
        print(f"backprop {args.command}: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    except RecursionError:  # json/tomllib on brackets nested thousands deep
        print(f"backprop {args.command}: error: an input is nested too deeply to read "
              "(brackets inside brackets thousands deep)", file=sys.stderr)
        return 2
    except MemoryError as exc:  # NumPy says how much it wanted: "Unable to allocate 74.5 GiB ..."
        detail = str(exc).split(" for an array")[0] or "out of memory"
        print(f"backprop {args.command}: error: {detail}; use a smaller network or fewer rows",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # `backprop derive | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
