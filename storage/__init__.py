"""SQLite storage for riskon, a thin layer of named operations over sqlite-utils."""

from storage.db import Delivery, Store, Subscription

__all__ = ["Delivery", "Store", "Subscription"]
