"""Exceptions that end a command with a one-line message and a fixed exit code."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a malformed target, a missing file, a conflicting option (exit 2)."""

    exit_code = 2


class ToolError(Exception):
    """The tool itself could not do its job (exit 3)."""

    exit_code = 3
