"""An event's dedup key and its message's bar line write the bar time exactly as strftime did."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.events import AlertEvent
from alerts.messages import format_alert

# Bars are dated from the 1970s on; strftime pads a year under 1000 on some platforms and not on others.
BAR_TIMES = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                         timezones=st.just(timezone.utc))


@settings(max_examples=300, deadline=None)
@given(moment=BAR_TIMES, discriminator=st.sampled_from(["", "20", "2442.74|up"]))
def test_keys_and_bar_lines_as_strftime_wrote_them(moment, discriminator):
    # A kind without its own formatter: the generic text, whose last line is the bar's date and the rule.
    event = AlertEvent("rut_ath", "touch", "^RUT", moment, {"price": 2500.0}, discriminator)
    stamp = moment.strftime("%Y-%m-%dT%H:%MZ")
    assert event.dedup_key == f"rut_ath|^RUT|touch|{stamp}" + (f"|{discriminator}" if discriminator else "")
    assert format_alert(event).endswith(f"\nBar: {moment.strftime('%Y-%m-%d')} · rule rut_ath")


def test_a_key_names_the_minute_of_an_intraday_bar():
    event = AlertEvent("btc_move", "pct_move", "BTC", datetime(2024, 3, 9, 14, 5, 59, tzinfo=timezone.utc), {}, "up")
    assert event.dedup_key == "btc_move|BTC|pct_move|2024-03-09T14:05Z|up"
