"""``ipcbench`` command line: parses, calls, and turns user errors into one line on stderr + exit 2."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import commands
from ._version import __version__
from .errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit 2), not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ipcbench", description="Benchmark Python multiprocessing IPC: Queue, Pipe, Manager "
                    "proxies, Pool, Lock and process start-up, across payload sizes, worker counts and start "
                    "methods.", epilog="Example: ipcbench run --preset smoke -o r.json && "
                    "ipcbench export r.json --format csv -o r.csv",
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ipcbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    mods = [importlib.import_module(f"{commands.__name__}.{m.name}") for m in pkgutil.iter_modules(commands.__path__)]
    for mod in sorted(mods, key=lambda m: m.ORDER):
        mod.register(sub)
    return parser


def one_line(text: str) -> str:
    """A message as one line of plain text: newlines and other control characters (a file name may hold
    them, or terminal escape sequences) written as escapes."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"ipcbench: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ipcbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
