"""Errors users see. Each says what went wrong and where (file, line, field, block)."""

from __future__ import annotations


class HeisttraceError(Exception):
    """Base class: the CLI prints the message and exits non-zero, without a traceback."""


class InputError(HeisttraceError):
    """Bad input data; names the file (or URL), line (or block) and field where it broke."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        block: int | None = None,
    ) -> None:
        self.file, self.line, self.field, self.block = file, line, field, block
        where = []
        if file:
            where.append(str(file))
        if line is not None:
            where.append(f"line {line}")
        if block is not None:
            where.append(f"block {block}")
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
