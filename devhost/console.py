"""The one rich Console every `mlops` command prints through, so their output looks the same, and how
text from the host goes through it as it is.

highlight=False: rich would otherwise colour numbers and paths it guesses at in release ids and URLs.
emoji=False: a comment that says :fire: is printed as typed.

What the host sends (ids, comments, timeline details, errors, reasons) is data, never rich markup:
``literal`` makes it a Text, in which rich reads no markup, so `[/bold]` neither styles nor crashes.
``Listing`` is a table of such text whose id columns are never cut.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.console import Console, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

console = Console(highlight=False, emoji=False)

# Control characters a terminal would obey (colours, cursor moves, clearing) are shown as \xNN instead;
# tab and newline stay, and a carriage return (a Windows line end) goes.
_SHOWN_CONTROLS: dict[int, str | None] = {
    code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\t\n\r"
} | {ord("\r"): None}

Cell = str | Text | None  # a str or None is host text, printed as it is; a Text carries our own style
READABLE_WIDTH = 8  # a text column narrower than this is more fold than text: the rows are listed instead


def literal(value: object, style: str = "") -> Text:
    """``value`` (None as nothing) as it is, in ``style``: no markup read into it, no control characters obeyed."""
    return Text("" if value is None else str(value).translate(_SHOWN_CONTROLS), style=style)


class Listing:
    """Rows of literal text under a title, printed as a table whose ``ids`` columns are never cut.

    An id column is one line per id (never wrapped, never folded, so it can be copied) and at least as wide
    as its longest id: the other columns wrap instead, folding a long word rather than cutting it. On a
    console too narrow for the ids and READABLE_WIDTH of every other column, each row is printed as
    `column: value` lines instead.
    """

    def __init__(self, title: str, columns: Sequence[str], ids: Collection[str] = ()) -> None:
        self.title, self.columns, self.ids = title, tuple(columns), frozenset(ids)
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: Cell) -> None:
        self.rows.append([cell if isinstance(cell, Text) else literal(cell) for cell in cells])

    def table(self) -> Table:
        table = Table(title=literal(self.title))
        for index, header in enumerate(self.columns):
            if header in self.ids:
                table.add_column(header, no_wrap=True, min_width=self._widest(index))
            else:
                table.add_column(header, overflow="fold", min_width=min(READABLE_WIDTH, self._widest(index)))
        for row in self.rows:
            table.add_row(*row)
        return table

    def print(self, to: Console | None = None) -> None:
        to = to or console
        table = self.table()
        if rendered_width(to, table) <= to.width:
            to.print(table)
        else:
            self._print_records(to)

    def _widest(self, index: int) -> int:
        return max([len(self.columns[index]), *(row[index].cell_len for row in self.rows if index < len(row))])

    def _print_records(self, to: Console) -> None:
        """Row after row as `column: value` lines; an id's line is left to the terminal to wrap, whole."""
        to.print(literal(self.title, "italic"))
        for row in self.rows:
            to.print()
            for header, cell in zip(self.columns, row, strict=False):
                to.print(Text.assemble((f"{header}: ", "bold"), cell), soft_wrap=header in self.ids)


def rendered_width(to: Console, renderable: RenderableType) -> int:
    """How wide ``renderable`` comes out on ``to`` before printing crops it to the console's width."""
    lines = Segment.split_lines(to.render(renderable, to.options))
    return max((Segment.get_line_length(line) for line in lines), default=0)
