"""The one exception type for user errors.

A dependency-free leaf: ``signgen.poses`` and ``signgen.video`` import it too, so the CLI
can turn any user error into one line and exit code 2.
"""


class SigngenError(Exception):
    """A problem with the user's input (bad gloss, unreadable file, wrong shape, missing
    weights). The message is one line, shown to the user as is."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type's name when it has none: the
    detail a one-line user error can carry from a library's exception."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
