"""Draw a console table exactly as rich's Table draws it (default box, header and padding), at a fraction of its cost.

Why not always rich's Table: it measures, wraps and renders every cell as a renderable of its own (about 50 µs a
cell, twice over when it must shrink columns to the console), a quarter of a backtest's console report. Here the
column widths follow rich's own rules (widest first, then evenly) and only a cell wider than its column goes
through rich's word wrap; anything unusual (markup, tabs, an ASCII-only or legacy Windows console, columns under
three cells wide) is handed to rich's Table itself. tests/bot/test_backtest_table.py compares the two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

PADDING = 2  # one space either side of a cell


class Row(NamedTuple):
    """One table row: its cells, whether a line follows it, and its style."""

    cells: tuple[str, ...]
    end_section: bool = False
    style: str = ""


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _plain(text: str) -> bool:
    """Say whether rich would show a cell's text as it is: no markup, emoji code, tab or control character."""
    if "\n" in text:
        return all(_plain(line) for line in text.split("\n"))
    return "[" not in text and text.isprintable() and not _EMOJI_CODE.search(text)


_EMOJI_CODE = re.compile(r":\S*:")  # what rich might read as an emoji's name (":warning:")


def _column_width(texts: Sequence[str], limit: int) -> int:
    """Return a column's width within `limit` as rich measures it: its longest line and the padding.

    (rich's measurement of a padded text comes down to this; a column's narrowest width plays no part in its
    layout.)
    """
    if limit < 1:
        return 0
    if limit <= PADDING:
        return limit
    return min(max(_width(line) for text in texts for line in text.split("\n")) + PADDING, limit)


def _reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    """Take `total` off the values in proportion to the ratios, each at most its maximum (rich's ratio_reduce)."""
    ratios = [ratio if most else 0 for ratio, most in zip(ratios, maximums)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining, out = total, []
    for ratio, most, value in zip(ratios, maximums, values):
        if ratio and total_ratio > 0:
            taken = min(most, round(ratio * remaining / total_ratio))
            out.append(value - taken)
            remaining -= taken
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def _collapse(widths: list[int], wrapable: list[bool], limit: int) -> list[int]:
    """Narrow the widest wrapable columns, then the next widest, until the table fits (rich's _collapse_widths)."""
    total = sum(widths)
    excess = total - limit
    if any(wrapable):
        while total and excess > 0:
            widest = max(width for width, wraps in zip(widths, wrapable) if wraps)
            second = max(width if wraps and width != widest else 0 for width, wraps in zip(widths, wrapable))
            ratios = [1 if (width == widest and wraps) else 0 for width, wraps in zip(widths, wrapable)]
            if not any(ratios) or not widest - second:
                break
            widths = _reduce(excess, ratios, [min(excess, widest - second)] * len(widths), widths)
            total = sum(widths)
            excess = total - limit
    return widths


def column_widths(columns: Sequence[Sequence[str]], no_wrap: Sequence[bool], console_width: int) -> list[int]:
    """Return each column's width with its padding, as rich's Table lays out these columns (header first)."""
    limit = max(0, console_width - (len(columns) + 1))  # the borders take one cell per column, and one
    widths = [_column_width(texts, limit) or 1 for texts in columns]
    if sum(widths) > limit:
        widths = _collapse(widths, [not flag for flag in no_wrap], limit)
        if sum(widths) > limit:  # the last resort: every column narrower alike
            widths = _reduce(sum(widths) - limit, [1] * len(widths), widths, widths)
        widths = [_column_width(texts, max(0, width)) for texts, width in zip(columns, widths)]
    return widths


def _cell_lines(console: Any, text: str, width: int, justify: str, no_wrap: bool,
                overflow: str = "ellipsis") -> list[str]:
    """Return a cell's lines, each exactly `width` cells wide, as rich renders it in a column."""
    from rich.cells import set_cell_size

    lines = text.split("\n")
    if len(lines) == 1 and _width(text) <= width and not text.endswith(" "):  # the usual cell
        pad = " " * (width - _width(text))
        return [text + pad if justify == "left" else pad + text]
    if all(_width(line) <= width and line == line.rstrip() for line in lines):
        pads = [" " * (width - _width(line)) for line in lines]
        return [line + pad if justify == "left" else pad + line for line, pad in zip(lines, pads)]
    from rich.text import Text

    wrapped = Text(text).wrap(console, width, justify=justify, overflow=overflow,  # type: ignore[arg-type]
                              tab_size=console.tab_size, no_wrap=no_wrap)
    return [set_cell_size(line.plain, width) for line in wrapped]


def print_table(console: Any, title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Row],
                no_wrap: bool | Sequence[bool] = False) -> None:
    """Print a table exactly as rich's Table(title=title, title_justify="left") prints it with these columns.

    `columns`: (header, "left" or "right"); a header's "\\n" starts its second line. `no_wrap`: for every column,
    or one flag per column (such a column is narrowed only when nothing else fits).
    """
    flags = [no_wrap] * len(columns) if isinstance(no_wrap, bool) else list(no_wrap)
    texts = [title, *(name for name, _ in columns), *(cell for row in rows for cell in row.cells)]
    options = console.options
    if not columns or options.ascii_only or console.legacy_windows or not all(_plain(text) for text in texts):
        _rich_table(console, title, columns, rows, flags)
        return
    cells = [[name, *(row.cells[index] for row in rows)] for index, (name, _) in enumerate(columns)]
    widths = column_widths(cells, flags, console.width)
    if min(widths, default=0) <= PADDING:
        _rich_table(console, title, columns, rows, flags)
        return
    total = sum(widths) + len(widths) + 1
    from rich.segment import Segment, Segments

    get_style = console.get_style
    segments: list[Segment] = []  # as rich's Table yields them: each styled piece its own, the rest as it comes
    put = segments.append

    def edge(left: str, fill: str, cross: str, right: str) -> Segment:
        return Segment(left + cross.join(fill * width for width in widths) + right + "\n")

    def put_row(texts: Sequence[str], style: str, header: bool, bar: str) -> None:
        lines = [_cell_lines(console, text, width - PADDING, justify, flag)
                 for text, width, (_, justify), flag in zip(texts, widths, columns, flags)]
        if not style and all(len(cell) == 1 for cell in lines):  # the usual row: one line, no style
            put(Segment(bar + bar.join([" " + cell[0] + " " for cell in lines]) + bar + "\n"))
            return
        styled = get_style(style) if style else None
        height = max(len(cell) for cell in lines)
        for number in range(height):
            put(Segment(bar))
            for cell, width in zip(lines, widths):
                # A shorter header sits on the last lines, a shorter cell on the first, as rich aligns them.
                at = number - (height - len(cell)) if header else number
                if 0 <= at < len(cell):  # the padding and the text are pieces of their own, as rich yields them
                    put(Segment(" ", styled))
                    put(Segment(cell[at], styled))
                    put(Segment(" ", styled))
                else:
                    put(Segment(" " * width, styled))
                put(Segment(bar))
            put(Segment("\n"))

    italic = get_style("italic")
    if title and "\n" not in title and _width(title) <= total:
        put(Segment(title + " " * (total - _width(title)), italic))
        put(Segment("\n"))
    elif title:  # wrapped at the table's width, as rich wraps a title
        for line in _cell_lines(console, title, total, "left", False, overflow="fold"):
            put(Segment(line, italic))
            put(Segment("\n"))
    put(edge("┏", "━", "┳", "┓"))
    put_row([name for name, _ in columns], "bold", True, "┃")
    put(edge("┡", "━", "╇", "┩"))
    for index, row in enumerate(rows):
        put_row(row.cells, row.style, False, "│")
        if row.end_section and index < len(rows) - 1:
            put(edge("├", "─", "┼", "┤"))
    put(edge("└", "─", "┴", "┘"))
    # Every line fits the console and no styled piece holds a line break: rich's cropping would change nothing.
    console.print(Segments(segments), crop=False)


def _rich_table(console: Any, title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Row],
                no_wrap: Sequence[bool]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for (name, justify), flag in zip(columns, no_wrap):
        table.add_column(name, justify=justify, no_wrap=flag)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row.cells, end_section=row.end_section, style=row.style or None)
    console.print(table)
