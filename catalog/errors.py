"""The one base class of errors a user causes (bad config, unknown name, missing dataset or
version, unreadable source, unreachable storage).

The CLI runner (`catalog.cli.run`) prints such an error as one `error: ...` line naming the
file, key or what exists, and exits 2 without a traceback. Anything else is a bug in
lipforge and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; its message says what is wrong and where."""


class NotFound(UserError, LookupError):
    """A named thing (dataset, version, sample, component) does not exist; the message lists what does."""

    def __str__(self) -> str:  # KeyError/LookupError would quote the message
        return str(self.args[0]) if self.args else ""
