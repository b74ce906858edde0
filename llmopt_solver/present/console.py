"""Plain-text output of every text report: the one rich Console factory, the tables, and wrapped
free text, all at most TERMINAL_WIDTH columns (tests/test_output_width.py checks the golden outputs).

``TextTable`` is the tables of ``solve`` (runners-up, frontier, sweep), ``plan``, ``catalog``,
``validate`` and ``calibrate``: rich's SIMPLE_HEAD layout without edges, written directly when it
fits the width (the common case, and no rich import: ``solve`` starts ~0.05 s sooner), else
through rich, which folds cells to fit. tests/test_present_width.py checks both paths give the
same bytes. ``fill`` wraps free text (reasons, notes, lists).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

TERMINAL_WIDTH = 100  # default text width of tables: fits a 100-column terminal
Justify = Literal["left", "right"]
# markup, emoji codes, non-ASCII (and spaces at either end): rich decides
_RICH_MARKUP = re.compile(r"\[|:\S+:|[^\x20-\x7e]")


def console(buf: TextIO, width: int = TERMINAL_WIDTH) -> Console:
    """Returns a Console writing plain text (no colour, no highlighting) into ``buf``, ``width`` columns."""
    from rich.console import Console

    return Console(file=buf, width=width, no_color=True, highlight=False, soft_wrap=True)


NBSP = "\u00a0"  # in text given to fill(): a space that never breaks (keeps e.g. "vs $x" together)


def fill(text: str, width: int = TERMINAL_WIDTH, initial_indent: str = "", subsequent_indent: str = "  ") -> str:
    """Returns free text (a reason, a note, a list) wrapped at ``width`` columns, continuation lines
    indented; words never break, nor lines at hyphens or no-break spaces (NBSP, printed as spaces)."""
    out = textwrap.fill(text, width, initial_indent=initial_indent, subsequent_indent=subsequent_indent,
                        break_on_hyphens=False, break_long_words=False)
    return out.replace(NBSP, " ")


@dataclass
class TextTable:
    """A table of text cells: header line, a rule, rows; columns two spaces apart, justified."""

    title: str = ""
    columns: list[tuple[str, Justify]] = field(default_factory=list)
    rows: list[tuple[str, ...]] = field(default_factory=list)
    unbroken: set[int] = field(default_factory=set)  # columns rich must not fold (names, ids)

    def add_column(self, header: str, justify: Justify = "left", fold: bool = True) -> None:
        """Adds a column; ``fold=False``: when the table is too wide, rich folds other columns, never this one."""
        if not fold:
            self.unbroken.add(len(self.columns))
        self.columns.append((header, justify))

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def render(self, width: int = TERMINAL_WIDTH) -> str:
        """Returns the table as text at most ``width`` columns wide (rich folds cells when needed),
        without spaces at line ends."""
        plain = self._plain(width)
        return plain if plain is not None else self._rich(width)

    def _plain(self, width: int) -> str | None:
        """Returns the text when every cell fits on one line and rich would not restyle it, else None."""
        texts = [self.title, *(h for h, _ in self.columns), *(c for r in self.rows for c in r)]
        if any(_RICH_MARKUP.search(t) or t != t.strip() for t in texts):
            return None
        w = [max([len(h), *(len(r[j]) for r in self.rows)]) for j, (h, _) in enumerate(self.columns)]
        total = sum(w) + 2 * (len(w) - 1)
        if total > width or len(self.title) > total:
            return None

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.rjust(w[j]) if self.columns[j][1] == "right" else c.ljust(w[j])
                             for j, c in enumerate(cells)).rstrip()

        out = [self.title] if self.title else []
        out += [line(tuple(h for h, _ in self.columns)), "\u2500" * total, *(line(r) for r in self.rows)]
        return "\n".join(out) + "\n"

    def rich_table(self) -> Table:
        """Returns the same table as a rich Table."""
        from rich import box
        from rich.table import Table

        t = Table(title=self.title or None, title_justify="left", show_lines=False, pad_edge=False,
                  box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
        for j, (header, justify) in enumerate(self.columns):
            t.add_column(header, justify=justify, overflow="fold" if j else "ellipsis", no_wrap=j in self.unbroken)
        for r in self.rows:
            t.add_row(*r)
        return t

    def _rich(self, width: int) -> str:
        import io

        buf = io.StringIO()
        console(buf, width).print(self.rich_table())
        return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())  # no padding at line ends
