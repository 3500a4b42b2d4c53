"""Errors that the harness reports to a user (one paragraph, no traceback needed)."""


class HarnessError(Exception):
    """A user-facing error: the message names the file, key, command or tool at fault."""
