"""SQLite storage for riskon, a thin layer of named operations over sqlite-utils."""

from storage.db import Delivery, Store, Subscription
from storage.rows import FeedPolls, Mute, RecordedAlert

__all__ = ["Delivery", "FeedPolls", "Mute", "RecordedAlert", "Store", "Subscription"]
