"""Entry point of the ``signgen`` command.

Each command group lives in its own module with a ``register(commands)`` function that
adds its sub-parsers and sets ``func`` on each; this file only wires them together and
turns user errors into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import re
import sys

from signgen import __version__
from signgen.errors import SigngenError

# Modules under signgen.cli that register commands, in the order shown by --help.
COMMAND_MODULES = ["render", "pipeline", "poses", "gloss", "data", "train", "eval", "recognise", "demo"]

EXIT_USER_ERROR = 2
# The longest error message printed: a message that echoes a huge input is cut.
MAX_MESSAGE = 400


class UsageError(Exception):
    """A command line argparse refuses (unknown option, a value a ``type=`` refuses)."""


class Parser(argparse.ArgumentParser):
    """argparse, with a bad command line as one ``signgen: error:`` line and exit code 2
    (raised as :class:`UsageError` for :func:`main`), and an argument that starts with a
    minus and a digit (``-5,-5``, ``-0.5``, ``-inf``) read as a value, not an option."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\.?\d|inf|nan)", re.IGNORECASE)

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


class DeferredWarnings(logging.Handler):
    """Holds the warnings (``logging`` and ``warnings``) of a command: shown, one line each
    and once, after the command succeeds; dropped when it fails, so that an error is the
    only line a failed command prints."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed log call must not hide the command's result
            text = str(record.msg)
        if record.name == "py.warnings":  # "file:line: Category: message\n  source line"
            text = text.strip().splitlines()[0].split(": ", 1)[-1]
        line = one_line(text)
        if line not in self.lines:
            self.lines.append(line)


class LineTrackingStream:
    """``sys.stderr`` while a command runs: passes everything through and remembers whether
    the last text written left the cursor in the middle of a line (a progress bar redraws
    its line with carriage returns and never ends it), so that an error can start a line
    of its own."""

    def __init__(self, stream):
        self._stream = stream
        self.mid_line = False

    def write(self, text):
        written = self._stream.write(text)
        if text:
            self.mid_line = not str(text).endswith("\n")
        return written

    def __getattr__(self, name):
        return getattr(self._stream, name)


def close_progress_bars() -> None:
    """Close every progress bar a failed command left open (a bar closed by its ``with``
    block is already gone): a bar left open would redraw itself over the error line."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # a bar on a closed stream: nothing left to clear
            pass


def print_error(message: str, stream=None) -> None:
    """The one ``signgen: error:`` line, on a line of its own: open progress bars closed,
    and a line a bar left unfinished cleared (terminal) or ended (file, pipe) first."""
    close_progress_bars()
    stream = sys.stderr if stream is None else stream
    if isinstance(stream, LineTrackingStream) and stream.mid_line:
        try:
            interactive = stream.isatty()
        except (AttributeError, ValueError):
            interactive = False
        stream.write("\r\x1b[K" if interactive else "\n")
    print(f"signgen: error: {one_line(message)}", file=stream)


# Characters a terminal acts on instead of showing: C0 and C1 controls, DEL, and the
# bidirectional overrides that reorder what follows them on screen.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one line of at most ``limit`` characters (an ellipsis marks a cut),
    safe for a terminal: control characters a message echoes from user input (an escape
    sequence in a gloss) are shown escaped, as ``\\x1b``, never sent to the terminal."""
    line = " ".join(str(text).split())
    line = _UNPRINTABLE.sub(lambda match: ascii(match.group())[1:-1], line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


class CommandGroups:
    """Shared sub-parser registry, so that two modules can add commands to one group
    (``signgen train fusion`` and ``signgen train g2p`` live in different modules)."""

    def __init__(self, subparsers: argparse._SubParsersAction):
        self._subparsers = subparsers
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def group(self, name: str, help: str) -> argparse._SubParsersAction:
        if name not in self._groups:
            parser = self._subparsers.add_parser(name, help=help)
            self._groups[name] = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
        return self._groups[name]

    def command(self, name: str, help: str) -> argparse.ArgumentParser:
        return self._subparsers.add_parser(name, help=help, description=help)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="signgen", description="Sign-language video generation and evaluation.")
    parser.add_argument("--version", action="version", version=f"signgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = CommandGroups(subparsers)
    for name in COMMAND_MODULES:
        importlib.import_module(f"signgen.cli.{name}").register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(f"signgen: error: {one_line(str(error))}", file=sys.stderr)
        return EXIT_USER_ERROR
    deferred = DeferredWarnings()
    root = logging.getLogger()
    root.addHandler(deferred)
    logging.captureWarnings(True)
    original_stderr = sys.stderr
    stderr = sys.stderr = LineTrackingStream(original_stderr)
    try:
        args.func(args)
    except SigngenError as error:
        print_error(str(error), stderr)
        return EXIT_USER_ERROR
    except OSError as error:
        # A path too long for the file system is the user's, wherever it is first touched
        # (a stat() of it raises); any other OSError is a bug and keeps its traceback.
        if error.errno != errno.ENAMETOOLONG:
            raise
        print_error(f"file name too long for the file system: {error.filename}", stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        close_progress_bars()
        print("\nsigngen: interrupted" if stderr.mid_line else "signgen: interrupted", file=stderr)
        return 130
    finally:
        if sys.stderr is stderr:
            sys.stderr = original_stderr
        logging.captureWarnings(False)
        root.removeHandler(deferred)
    for line in deferred.lines:
        print(f"signgen: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
