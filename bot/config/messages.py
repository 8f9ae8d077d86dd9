"""Word config problems: key paths, quoted values with hidden characters escaped, did-you-mean hints."""

from __future__ import annotations

import difflib
import unicodedata
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from bot.config.source import Located

# Unicode categories a terminal would act on or hide: controls, format characters (a right-to-left override
# reverses what follows it), private use, surrogates, line and paragraph separators.
HIDDEN_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}


def escape_hidden(text: str) -> str:
    """Return text with every control or invisible format character written as a visible escape."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if unicodedata.category(char) not in HIDDEN_CATEGORIES:
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


def shown(value: Any, limit: int = 60) -> str:
    """Return a value as a message quotes it: hidden characters escaped, cut short so a line never echoes a document."""
    text = escape_hidden(str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_path(path: tuple[Any, ...]) -> str:
    """Render a key path as `rules[2].window`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + shown(part)
    return text or "(top level)"


FRIENDLY = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "missing": "is required",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "finite_number": "must be a finite number",
}


def describe_error(error: Any, known_fields: list[str]) -> str:
    """Word one pydantic error the way a config author reads it."""
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        guess = difflib.get_close_matches(key, known_fields, n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        return f"unknown key{hint}"
    if kind == "literal_error":
        return "must be one of " + error.get("ctx", {}).get("expected", "the allowed values")
    template = FRIENDLY.get(kind)
    if template:
        ctx = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in error.get("ctx", {}).items()}
        try:
            return template.format(**ctx)
        except (KeyError, IndexError):
            return template
    return escape_hidden(error["msg"][0].lower() + error["msg"][1:])


def fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Return the field names valid at the parent of `loc`, for "did you mean" hints."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        nested = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = nested[0] if nested else None
        if current is None and args:
            inner = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            current = inner[0] if inner else None
    return list(getattr(current, "model_fields", {}).keys()) if current else []


def validation_problems(
    exc: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...], where: Located
) -> list[str]:
    """Turn a pydantic ValidationError into one problem line per error, with key path and line."""
    problems = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        known = fields_at(model, tuple(error["loc"]))
        problems.append(f"{format_path(loc)}: {describe_error(error, known)} {where.where(loc)}")
    return problems


def did_you_mean(value: str, known: list[str], listing: str = "known") -> str:
    """Return a hint naming the closest known value, or listing them all."""
    guess = difflib.get_close_matches(value, known, n=1)
    if guess:
        return f" (did you mean '{shown(guess[0])}'?)"
    return f" ({listing}: {', '.join(shown(k) for k in sorted(known)) or 'none'})" if listing else ""
