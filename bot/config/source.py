"""Read a config document once: YAML with a line for every key, size/alias/depth limits, duplicate keys, ${VAR}."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from bot.config.messages import format_path, shown
from bot.config.models import ConfigError

MAX_CONFIG_BYTES = 1_000_000
MAX_ALIASES = 200  # a YAML "billion laughs" document expands aliases exponentially; real configs need few
MAX_DEPTH = 30  # real configs nest five or six levels; deeper ones would exhaust the parser's recursion
MAX_VALUES = 20_000  # values after alias expansion; the shipped config has a few hundred
ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MERGE_TAG = "tag:yaml.org,2002:merge"

# What PyYAML's "while ..." context means to someone who wrote the file, and what opened it.
OPENED = {
    "while scanning a quoted scalar": "the quote opened on line {line} is never closed",
    "while parsing a flow sequence": "the '[' opened on line {line} is never closed",
    "while parsing a flow mapping": "the '{{' opened on line {line} is never closed",
    "while scanning a simple key": "the key on line {line} has no ':' after it",
    "while parsing a block mapping": "the block that starts on line {line} is broken (check the indentation)",
    "while parsing a block collection": "the list that starts on line {line} is broken (check the indentation)",
}


@dataclass
class Located:
    """Line numbers of every key path in a YAML document."""

    lines: dict[tuple[Any, ...], int]
    filename: str

    def where(self, path: tuple[Any, ...]) -> str:
        """Return `(file:line)` for a key path, or for its nearest parent that has a line."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return f"({self.filename}:{line})"
        return f"({self.filename})"

    def line(self, path: tuple[Any, ...]) -> int | None:
        """Return the line of a key path, if it has one."""
        return self.lines.get(tuple(path))


class _CountingLoader(yaml.SafeLoader):
    """A safe loader that refuses documents with more aliases than any real config needs."""

    alias_count = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                raise ConfigError([f"too many YAML aliases (over {MAX_ALIASES}): refusing a possible alias bomb"])
        return super().compose_node(parent, index)


class _Walk:
    """One pass over the composed YAML: lines per key path, duplicated keys, depth and size limits."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: dict[tuple[Any, ...], int] = {}
        self.duplicates: list[str] = []
        self.budget = MAX_VALUES

    def visit(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if len(path) > MAX_DEPTH:
            raise ConfigError([(f"{format_path(path[:MAX_DEPTH])}: nested more than {MAX_DEPTH} levels deep "
                                f"(line {node.start_mark.line + 1}); not a riskon config")])
        self.budget -= 1
        if self.budget < 0:
            raise ConfigError([(f"config expands to more than {MAX_VALUES:,} values (nested YAML aliases?): "
                                "refusing a possible alias bomb")])
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                line = key_node.start_mark.line + 1
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != MERGE_TAG:
                    self._note_key(path + (key,), (key_node.tag, key), line, first_line)
                self.lines[path + (key,)] = line
                self.visit(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.visit(item, path + (index,))

    def _note_key(self, path: tuple[Any, ...], identity: Any, line: int, first_line: dict[Any, int]) -> None:
        # PyYAML keeps the last of two equal keys without a word: a second `storage:` would move the database.
        if identity in first_line:
            self.duplicates.append(
                f"{format_path(path)}: key given twice, on line {first_line[identity]} and line {line}; "
                f"the second would silently replace the first ({self.filename}:{line})"
            )
        else:
            first_line[identity] = line


def syntax_problem(exc: yaml.YAMLError, filename: str) -> str:
    """Word a YAML syntax error, pointing at the line that opened what was left unclosed."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    text = f"not valid YAML: {problem} ({filename}:{mark.line + 1})" if mark else f"not valid YAML: {problem} ({filename})"
    context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and opened is not None and (mark is None or opened.line != mark.line):
        template = OPENED.get(context, context + " that starts on line {line}")
        text += f"; {template.format(line=opened.line + 1)}"
    return text


def read_yaml(text: str, filename: str) -> tuple[Any, Located]:
    """Parse a YAML document once into plain data and the line of every key path; raise ConfigError."""
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{filename}: file is larger than {MAX_CONFIG_BYTES // 1000} kB; not a riskon config"])
    walk = _Walk(filename)
    try:
        loader = _CountingLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ConfigError([f"{filename} is empty: it needs at least feeds, symbols and rules"])
            walk.visit(node, ())
            if walk.duplicates:
                raise ConfigError(walk.duplicates)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError([f"{filename}: nested too deeply to read; not a riskon config"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([syntax_problem(exc, filename)]) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits, or a date like 2020-13-45
        raise ConfigError([f"a value cannot be read: {shown(str(exc).split(';')[0], 200)} ({filename})"]) from None
    return data, Located(walk.lines, filename)


def interpolate(value: Any, path: tuple[Any, ...], env: dict[str, str], problems: list[str], where: Located) -> Any:
    """Replace ${VAR} (and ${VAR:-default}) in every string with the environment's value."""
    if isinstance(value, str):
        if "\x00" in value or not value.isascii() and _unencodable(value):
            # "\0" or "\ud800" escapes: file paths and URLs built from them fail deep inside the OS or a library.
            problems.append(f"{format_path(path)}: holds a NUL character or an unpaired surrogate escape {where.where(path)}")
            return value

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(f"{format_path(path)}: environment variable {name} is not set {where.where(path)}")
            return ""

        return ENV_PATTERN.sub(substitute, value)
    if isinstance(value, dict):
        return {k: interpolate(v, path + (k,), env, problems, where) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, path + (i,), env, problems, where) for i, v in enumerate(value)]
    return value


def secret_names(text: str) -> set[str]:
    """Return the names of the environment variables a config document substitutes."""
    return {match.group(1) for match in ENV_PATTERN.finditer(text)}


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
