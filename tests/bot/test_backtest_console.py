"""The backtest's console tables: every cell whole when the table fits, never wider than the console."""

from __future__ import annotations

import io

from rich.console import Console

from bot.backtest.console import Row, print_table

COLUMNS = [("follower", "left"), ("after", "right"), ("effect\nin points", "right")]
ROWS = [Row(("ALTS", "+7d", "-2.5")), Row(("", "+180d", "+326.4"), end_section=True), Row(("BTC", "+7d", "+3.1"))]


def printed(width: int) -> list[str]:
    out = io.StringIO()
    print_table(Console(file=out, width=width), "^RUT new ath", COLUMNS, ROWS)
    return out.getvalue().splitlines()


def test_a_table_that_fits_is_drawn_with_every_cell_whole():
    lines = printed(80)
    assert lines[0].startswith("^RUT new ath")
    assert lines[2].split("┃")[1:4] == ["          ", "       ", "    effect "]  # a two-line header, bottom-aligned
    assert lines[3].split("┃")[1:4] == [" follower ", " after ", " in points "]
    assert "│ ALTS     │   +7d │      -2.5 │" in lines
    assert "│          │ +180d │    +326.4 │" in lines
    assert lines.index("│ BTC      │   +7d │      +3.1 │") == lines.index("│          │ +180d │    +326.4 │") + 2
    assert lines[-1].startswith("└") and len({len(line) for line in lines[1:]}) == 1


def test_a_table_wider_than_the_console_is_wrapped_to_fit_with_every_row():
    lines = printed(24)
    assert max(len(line) for line in lines) <= 24
    text = "\n".join(lines)
    assert "ALTS" in text and "BTC" in text and "+180d" in text


def test_a_title_wider_than_the_console_is_wrapped_not_cut():
    title = "IWM resistance flip (smallcap_flip) against every follower"
    out = io.StringIO()
    print_table(Console(file=out, width=40), title, COLUMNS, ROWS)
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 40
    top = next(number for number, line in enumerate(lines) if line.startswith("┏"))
    assert " ".join(" ".join(lines[:top]).split()) == title  # the whole title, wrapped at the table's width as rich does
    assert top > 1 and max(len(line.rstrip()) for line in lines[:top]) <= len(lines[top])
    assert "│ ALTS     │   +7d │      -2.5 │" in lines
