"""The one rich Console factory of the presenters: plain text into a buffer, at a fixed width."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console

TERMINAL_WIDTH = 100  # default text width of tables: fits a 100-column terminal


def console(buf: TextIO, width: int = TERMINAL_WIDTH) -> Console:
    """Returns a Console writing plain text (no colour, no highlighting) into ``buf``, ``width`` columns."""
    return Console(file=buf, width=width, no_color=True, highlight=False, soft_wrap=True)
