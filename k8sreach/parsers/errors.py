"""The error every parser raises when its input is not the expected format at all."""

from __future__ import annotations


class ParseError(ValueError):
    """Text is not the format the parser reads; the message names the unexpected line."""

    def __init__(self, message: str, line_no: int | None = None, line: str | None = None):
        if line_no is not None and line is not None:
            message = f"{message} (line {line_no}: {line!r})"
        super().__init__(message)
        self.line_no = line_no
        self.line = line
