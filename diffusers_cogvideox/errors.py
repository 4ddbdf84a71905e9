"""The error types every command line of the project reports as one line (exit status 2) instead of a traceback.

Library code raises :class:`UsageError` (a ``ValueError``) for input a caller can fix: a bad argument, a file that is
missing or in the wrong place, an output folder that holds someone else's files. The message names what was wrong
and what is accepted. ``ValueError`` and ``OSError`` (missing, unreadable or unwritable files, a full disk, an
unreachable Hub) are reported the same way; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_USAGE = 2
"""Exit status of a command that refused its input (argparse uses the same)."""

DEBUG_ENV = "COGVIDEOX_VR_DEBUG"
"""Set to 1 (or pass ``--debug``) to see the traceback of a known error too."""


class UsageError(ValueError):
    """Input the user can fix; the message says what was wrong and what is accepted."""


class OutputExistsError(UsageError, FileExistsError):
    """An output would replace or delete something the command did not write (or was not asked to replace)."""


KNOWN_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
"""Reported as one line by the command lines: ``ValueError`` (``UsageError`` included) and ``OSError``."""


def one_line(error: BaseException) -> str:
    """``error`` as one line: an ``OSError``'s reason and file, any other message with its lines joined."""
    if isinstance(error, OSError) and error.strerror and error.filename and not isinstance(error, UsageError):
        text = f"{error.strerror}: {error.filename}"
        if error.filename2:
            text += f" -> {error.filename2}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
