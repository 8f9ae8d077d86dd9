"""Bar times as text: one cache of each instant's UTC ISO text, shared by the rules' state and the store's tables."""

from __future__ import annotations

from datetime import datetime, timezone

# By instant: moments equal in any time zone are one key, and their text is the UTC one. The rules
# (alerts.rules.common.iso) and the store (storage.base.iso) write the same bar times over and over. Only a daily
# bar's open (a UTC midnight) is held: a live bot's clock readings are each new, and held they grew the cache by
# ~43,000 texts (about 9 MB) a day.
UTC_TEXTS: dict[datetime, str] = {}
UTC_TEXTS_HELD = 50_000  # cleared when it holds this many: 137 years of daily bars
_last_reading: tuple[datetime | None, str] = (None, "")  # the last clock reading: a poll writes its `now` in many rows


def utc_text(moment: datetime) -> str:
    """Return a moment's UTC ISO text, formatted once per bar open."""
    global _last_reading
    text = UTC_TEXTS.get(moment)
    if text is not None:
        return text
    last = _last_reading  # one read: another thread may set it meanwhile
    if last[0] == moment:
        return last[1]
    utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    if utc.hour or utc.minute or utc.second or utc.microsecond:
        text = utc.isoformat()
        _last_reading = (moment, text)
        return text
    if len(UTC_TEXTS) >= UTC_TEXTS_HELD:
        UTC_TEXTS.clear()
    # A daily bar's open, most of the texts: the date's text and midnight, which is what isoformat writes, at a
    # fraction of its cost (it formats the whole moment through printf).
    text = UTC_TEXTS[moment] = f"{utc.date().isoformat()}T00:00:00+00:00"
    return text
