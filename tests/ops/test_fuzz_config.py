"""Fuzzing config documents: whatever the text, loading it ends in a Config or a clear ConfigError, never a crash.

Through the command line the same documents exit 2 with the problems listed, and `riskon run` writes nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli import main
from bot.config import Config, ConfigError, load_config, parse_config
from tests.ops.fuzzing import FUZZ, cases

CASES_RANDOM_YAML = cases(200)
CASES_MUTATED = cases(200)
CASES_RAW_TEXT = cases(500)
CASES_ALIASES = cases(50)
CASES_CLI = cases(35)

VALID: dict[str, Any] = {
    "storage": {"path": "riskon.db"},
    "schedule": {"deliver_every_seconds": 2, "max_attempts": 12},
    "feeds": {"history": {"kind": "replay", "path": "/tmp/no-such-folder", "every_seconds": 60}},
    "symbols": [{"id": "^RUT", "feed": "history", "csv": "RUT", "asset_class": "index"},
                {"id": "BTC", "feed": "history", "asset_class": "crypto"}],
    "rules": [{"id": "rut_ath", "kind": "new_ath", "symbols": ["^RUT"], "rearm_pct": 1.0, "min_gap_days": 30},
              {"id": "btc_surge", "kind": "pct_move", "symbols": ["BTC"], "bars": 7, "min_pct": 20.0,
               "cooldown": "14d"}],
    "channels": {"console": {"enabled": True}},
    "admins": ["123"],
    "health": {"enabled": False, "host": "127.0.0.1", "port": 9108},
}


def outcome(text: str) -> Config | ConfigError:
    """Load a document; return the Config or the ConfigError; any other exception fails the test."""
    try:
        return parse_config(text, "fuzz.yaml", env={})
    except ConfigError as exc:
        assert exc.problems, "a ConfigError names at least one problem"
        for problem in exc.problems:
            assert isinstance(problem, str) and problem.strip(), exc.problems
            assert "Traceback" not in problem
            assert len(problem) <= 1000, f"a problem line should not echo the document: {problem[:200]}..."
        return exc


# --- bugs the fuzzing found (regressions) ---------------------------------------------------------------

@pytest.mark.parametrize("text, says", [
    ("schedule: {max_attempts: " + "9" * 5000 + "}", "a value cannot be read: Exceeds the limit (4300 digits)"),
    ("storage: {path: 2020-13-45}", "a value cannot be read: month must be in 1..12"),
    ("feeds: " + "[" * 3000 + "]" * 3000, "nested too deeply to read"),
    ("feeds: " + "{a: " * 3000 + "1" + "}" * 3000, "nested too deeply to read"),
    ("feeds: " + "[" * 40 + "]" * 40, "nested more than 30 levels deep"),
])
def test_documents_that_used_to_crash_the_loader_are_config_errors(text, says):
    # Were ValueError (integers over 4,300 digits, impossible dates) and RecursionError (deep nesting).
    result = outcome(text)
    assert isinstance(result, ConfigError)
    assert says in str(result)


@pytest.mark.parametrize("text", ['storage: {path: "riskon\\0.db"}', 'storage: {path: "\\ud800.db"}',
                                  'feeds: {r: {kind: replay, path: "/tmp/\\0"}}'])
def test_text_with_a_nul_or_an_unpaired_surrogate_is_a_config_error(text):
    # Was accepted, then `riskon run` died with a traceback (ValueError: embedded null byte; UnicodeEncodeError).
    result = outcome(text)
    assert isinstance(result, ConfigError)
    assert "holds a NUL character or an unpaired surrogate escape" in str(result)


@pytest.mark.parametrize("text", [
    "rules: [{id: a, kind: " + "x" * 5000 + ", symbols: [A]}]",
    "feeds: {r: {kind: replay, path: .}}\nsymbols: [{id: A, feed: " + "f" * 5000 + "}]",
    "feeds: {r: {kind: replay, path: .}}\nsymbols: [{id: A, feed: r}]\n"
    "rules: [{id: a, kind: new_ath, symbols: [" + "s" * 5000 + "]}]",
    "feeds: {" + "k" * 5000 + ": {kind: replay, path: .}}\nsymbols: [{id: A, feed: r}]",
])
def test_a_problem_quotes_a_long_value_cut_short(text):
    # Was a 5,000-character problem line: the whole value, quoted.
    result = outcome(text)
    assert isinstance(result, ConfigError)
    assert all(len(problem) < 300 for problem in result.problems), result.problems


def test_the_valid_base_document_is_valid():
    assert isinstance(outcome(yaml.safe_dump(VALID)), Config)


# --- strategies ------------------------------------------------------------------------------------------

HUGE_INTS = st.sampled_from([2**63, -2**63 - 1, 10**100, 10**4000, -(10**4000)])
NUMBERS = st.one_of(st.integers(), HUGE_INTS, st.floats(allow_nan=True, allow_infinity=True))
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["x" * 5000, "é" * 3000 + "\n" * 50, "${" * 1000]),  # long ones, cheap to generate
    st.sampled_from(["${NOT_SET}", "${X:-}", "<script>alert(1)</script>", "'; DROP TABLE alerts; --", "**bold**",
                     "\u202e\u0000", "null", "~", "yes", "1e400", "0x1F", "2020-01-01", "💥" * 100]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
KEYS = st.one_of(st.sampled_from(sorted(VALID) + ["kind", "id", "symbols", "feed", "path", "token", "enabled"]),
                 st.text(max_size=20), st.integers(), st.booleans())
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


def dump(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Return every key path in a nested document."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, prefix + (index,))
    return found


ALL_PATHS = paths_of(VALID)


def mutated(path: tuple, action: str, value: Any) -> Any:
    document = json.loads(json.dumps(VALID))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if action == "delete":
        del parent[path[-1]]
    elif action == "replace":
        parent[path[-1]] = value
    else:  # add a sibling key the model does not know
        if isinstance(parent, dict):
            parent[f"{path[-1]}_extra"] = value
        else:
            parent.append(value)
    return document


# --- properties ------------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=CASES_RANDOM_YAML)
@given(VALUES)
def test_any_yaml_document_is_a_config_or_a_clear_error(document):
    outcome(dump(document))


@settings(FUZZ, max_examples=CASES_MUTATED)
@given(st.sampled_from(ALL_PATHS), st.sampled_from(["delete", "replace", "add"]), VALUES)
def test_a_valid_config_with_one_key_wrong_missing_or_extra_is_a_config_or_a_clear_error(path, action, value):
    result = outcome(dump(mutated(path, action, value)))
    if action == "add" and isinstance(result, ConfigError) and isinstance(path[-1], str):
        # An unknown key is named as such (except inside free-form sections such as feed settings).
        named = ("unknown", "keys should be strings", "must be", "is required", "not set", "cannot be read", "too", "NUL")
        assert any(word in p for p in result.problems for word in named), result.problems


@settings(FUZZ, max_examples=CASES_RAW_TEXT)
@given(st.one_of(st.text(max_size=300),
                 st.text(alphabet=st.sampled_from(list("{}[]:&*!|>-?#%@`'\",\n\t <a1.\\$")), max_size=300)))
def test_raw_text_is_a_config_or_a_clear_error(text):
    outcome(text)


def alias_document(depth: int, width: int, merge: bool) -> str:
    """Build a "billion laughs": each level lists `width` aliases of the one before."""
    lines = ['a0: &a0 ["lol"]'] if not merge else ["a0: &a0 {kind: replay}"]
    for level in range(1, depth + 1):
        if merge:
            lines.append(f"a{level}: &a{level} {{<<: *a{level - 1}, k{level}: [{', '.join(['*a0'] * width)}]}}")
        else:
            lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines.append(f"feeds: {{bomb: *a{depth}}}")
    return "\n".join(lines)


@settings(FUZZ, max_examples=CASES_ALIASES)
@given(st.integers(1, 14), st.integers(1, 14), st.booleans())
def test_anchors_aliases_and_alias_bombs_end_quickly_in_a_clear_error(depth, width, merge):
    started = time.perf_counter()
    result = outcome(alias_document(depth, width, merge))
    assert isinstance(result, ConfigError)  # `a0`, `a1`... are unknown sections even when small
    # An expanded bomb (up to 14**14 nodes) would take hours; a refused one takes milliseconds. The bound only
    # tells the two apart, so it is wide enough for a machine loaded by other work (2.4 s was seen at load 10).
    assert time.perf_counter() - started < 15.0


@settings(FUZZ, max_examples=CASES_CLI)
@given(st.one_of(VALUES.map(dump),
                 st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["delete", "replace", "add"]), VALUES)
                 .map(lambda case: dump(mutated(*case)))))
def test_the_command_line_exits_2_on_every_bad_document_and_run_writes_nothing(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path)  # what the command line will do, with this process's environment
            valid = True
        except ConfigError:
            valid = False
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["check-config", str(path)])
        assert code == (0 if valid else 2), err.getvalue()
        if not valid:
            assert err.getvalue().startswith("riskon: invalid config (")
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                assert main(["run", "--config", str(path)]) == 2
            assert os.listdir(folder) == ["config.yaml"], "a bad config must not create a database"


# --- the real command line, as a user runs it --------------------------------------------------------------

BAD_DOCUMENTS = {
    "alias_bomb": alias_document(10, 10, False),
    "huge_number": "schedule: {max_attempts: " + "9" * 5000 + "}",
    "deep_nesting": "rules: " + "[" * 5000 + "]" * 5000,
    "wrong_types": "storage: {path: [1]}\nfeeds: {x: {kind: 5, every_seconds: yes}}\nsymbols: {a: 1}\n"
                   "rules: [{id: 'a b', kind: new_ath, symbols: []}]\nhealth: {port: 99999999999999999999}\n",
    "nul_in_path": 'storage: {path: "riskon\\0.db"}\n',
}


@pytest.mark.parametrize("command, name", [("check-config", "alias_bomb"), ("check-config", "huge_number"),
                                           ("run", "deep_nesting"), ("run", "wrong_types"),
                                           ("run", "nul_in_path")])
def test_riskon_exits_2_with_a_clear_message_and_writes_nothing(command, name, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(BAD_DOCUMENTS[name])
    args = [command, str(config)] if command == "check-config" else [command, "--config", str(config)]
    result = subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("riskon: invalid config (")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
