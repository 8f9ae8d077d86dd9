"""Bar times as text: one cache of each instant's UTC ISO text, shared by the rules' state and the store's tables."""

from __future__ import annotations

from datetime import datetime, timezone

# By instant: moments equal in any time zone are one key, and their text is the UTC one. The rules
# (alerts.rules.common.iso) and the store (storage.base.iso) write the same bar times over and over.
UTC_TEXTS: dict[datetime, str] = {}
UTC_TEXTS_HELD = 50_000  # cleared when it holds this many: a live bot's clock times would grow it for ever


def utc_text(moment: datetime) -> str:
    """Return a moment's UTC ISO text, formatted once per instant."""
    text = UTC_TEXTS.get(moment)
    if text is None:
        if len(UTC_TEXTS) >= UTC_TEXTS_HELD:
            UTC_TEXTS.clear()
        utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
        if utc.hour or utc.minute or utc.second or utc.microsecond:
            text = utc.isoformat()
        else:
            # A daily bar's open, most of the texts: the date's text and midnight, which is what isoformat writes,
            # at a fraction of its cost (it formats the whole moment through printf).
            text = f"{utc.date().isoformat()}T00:00:00+00:00"
        UTC_TEXTS[moment] = text
    return text
