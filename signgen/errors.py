"""The one exception type for user errors.

A dependency-free leaf: ``signgen.poses`` and ``signgen.video`` import it too, so the CLI
can turn any user error into one line and exit code 2.
"""


class SigngenError(Exception):
    """A problem with the user's input (bad gloss, unreadable file, wrong shape, missing
    weights). The message is one line, shown to the user as is."""
