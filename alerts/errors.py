"""The root exception every riskon package raises for known, user-facing failures."""


class RiskonError(Exception):
    """Signal a known failure with a message fit to show a user."""
