"""The backtest's own table drawing: the very characters and colours rich's Table prints, at any console width."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from bot.backtest.table import Row, _rich_table, column_widths, print_table

# Words like the report's (figures, signs, dashes, ellipses), a few wide characters, and now and then one longer
# than any column can hold.
WORD = st.one_of(
    st.sampled_from(["BTC", "ETH", "ALTS", "+7d", "+180d", "no", "evidence", "BETTER", "-12.3", "p", "0.04", "–",
                     "…", "too", "few", "^RUT", "(smallcap_ath)", "2021-11-08", "日本", "ünïcode", "glance:"]),
    st.text(alphabet="abcdefghij0123456789+-.%", min_size=1, max_size=30),
)
TEXT = st.lists(WORD, min_size=0, max_size=6).map(" ".join)
HEADER = st.lists(WORD, min_size=1, max_size=3).map(" ".join)


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], list[Row], list[bool], int]:
    count = draw(st.integers(1, 8))
    headers = draw(st.lists(st.one_of(HEADER, st.tuples(HEADER, HEADER).map("\n".join)), min_size=count,
                            max_size=count))
    justify = draw(st.lists(st.sampled_from(["left", "right"]), min_size=count, max_size=count))
    no_wrap = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    rows = [Row(tuple(draw(st.lists(TEXT, min_size=count, max_size=count))), draw(st.booleans()),
                draw(st.sampled_from(["", "bold"])))
            for _ in range(draw(st.integers(0, 6)))]
    title = draw(TEXT)
    if rows and draw(st.integers(0, 9)) == 0:  # now and then a cell rich would read as markup or an emoji's name
        rows[0] = rows[0]._replace(cells=(draw(st.sampled_from(["[bold]x[/bold]", ":warning:"])), *rows[0].cells[1:]))
    return title, list(zip(headers, justify)), rows, no_wrap, draw(st.integers(12, 220))


def drawn(draw_table, table, terminal: bool) -> str:
    title, columns, rows, no_wrap, width = table
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system="truecolor" if terminal else None)
    draw_table(console, title, columns, rows, no_wrap)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(tables(), st.booleans())
def test_a_table_is_drawn_as_richs_table_draws_it(table, terminal):
    assert drawn(print_table, table, terminal) == drawn(_rich_table, table, terminal)


def test_a_table_wider_than_the_console_narrows_its_widest_wrapping_column_first():
    # signal and follower keep their width (no wrap); the figures' columns give way, the widest first (26 to 25),
    # then both alike: 9 cells in two, rounded half to even as rich rounds (4 and 5).
    columns = [["signal", "^RUT new ath (smallcap_ath)"], ["follower", "BTC"], ["n", "30"],
               ["+7d", "no evidence +3.1 p 0.08"], ["+30d", "no evidence -10.6 p 0.47"]]
    assert column_widths(columns, [True, True, False, False, False], 200) == [29, 10, 4, 25, 26]
    assert column_widths(columns, [True, True, False, False, False], 90) == [29, 10, 4, 21, 20]
    table = Table()
    for texts, no_wrap in zip(columns, [True, True, False, False, False]):
        table.add_column(texts[0], no_wrap=no_wrap)
    table.add_row(*(texts[1] for texts in columns))
    out = io.StringIO()
    Console(file=out, width=90).print(table)
    assert [len(part) for part in out.getvalue().splitlines()[0][1:-1].split("┳")] == [29, 10, 4, 21, 20]
