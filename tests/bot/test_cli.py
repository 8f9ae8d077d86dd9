"""The riskon command line: help, version, check-config exit codes, and a broken config writes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
REPO = Path(__file__).resolve().parents[2]


def riskon(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", [[], ["run"], ["replay"], ["check-config"], ["backtest"], ["send-test"]])
def test_every_command_has_help(command, tmp_path):
    result = riskon(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "usage: riskon" in result.stdout


def test_version(tmp_path):
    result = riskon("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("riskon ")


def test_check_config_summarises_a_good_config(tmp_path):
    result = riskon("check-config", str(FIXTURES / "good_minimal.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "rules (1)" in result.stdout and "rut_ath" in result.stdout and "^RUT" in result.stdout


def test_check_config_lists_every_problem_and_exits_2(tmp_path):
    result = riskon("check-config", str(FIXTURES / "bad" / "wrong_type.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "rules[2].min_gap_days: must be a whole number (wrong_type.yaml:11)" in result.stderr


def test_check_config_refuses_a_duplicated_section_naming_both_lines(tmp_path):
    result = riskon("check-config", str(FIXTURES / "bad" / "duplicate_section.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "storage: key given twice, on line 1 and line 9" in result.stderr


def test_check_config_refuses_a_follow_through_with_an_unknown_leader(tmp_path):
    result = riskon("check-config", str(FIXTURES / "bad" / "unknown_leader.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "rules[1].leaders[0]: no symbol named '^RTU' (did you mean '^RUT'?)" in result.stderr
    assert "rules[1].trigger_rules[0]: no rule named 'rut_aht' (did you mean 'rut_ath'?)" in result.stderr


def test_check_config_escapes_a_right_to_left_override_in_its_summary(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text((FIXTURES / "good_minimal.yaml").read_text().replace('"^RUT"', '"^RUT\\u202eX"'))
    result = riskon("check-config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "^RUT\\u202eX" in result.stdout and "\u202e" not in result.stdout


def test_check_config_of_a_missing_file_exits_2(tmp_path):
    result = riskon("check-config", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "no such config file" in result.stderr


def test_run_with_a_broken_config_exits_2_and_writes_nothing(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text((FIXTURES / "bad" / "unknown_key.yaml").read_text())
    result = riskon("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "rules[0].rearm_pc: unknown key (did you mean 'rearm_pct'?)" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_bad_arguments_say_what_is_wrong(tmp_path):
    result = riskon("replay", "--data", ".", "--from", "yesterday", cwd=tmp_path)
    assert result.returncode == 2 and "'yesterday' is not a date" in result.stderr


def test_run_without_network_keeps_going_and_stops_cleanly_on_sigterm(tmp_path):
    """With every source unreachable the bot logs the failure, backs off, and exits 0 on SIGTERM."""
    (tmp_path / "config.yaml").write_text(
        """
storage: {path: live.db}
feeds:
  markets: {kind: exchange, every_seconds: 1, exchange: kraken, base_url: "http://127.0.0.1:9"}
symbols:
  - {id: BTC, feed: markets, source: BTC/USD, asset_class: crypto}
rules:
  - {id: ath, kind: new_ath, symbols: [BTC]}
"""
    )
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=log_file, text=True)
        try:
            # Wait (bounded) until the failing source has been reported, however slow start-up is.
            deadline = time.monotonic() + 90
            while "cannot load kraken markets" not in log_path.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log_path.read_text()
                time.sleep(0.2)
            time.sleep(2)  # a few more failing polls: still running?
            assert process.poll() is None, log_path.read_text()
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=15)
            elapsed = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
    stderr = log_path.read_text()
    assert code == 0, stderr
    assert elapsed < 10
    assert "feed markets: 1 of 1 symbol(s) failing: BTC: cannot load kraken markets" in stderr
    assert "Traceback" not in stderr
    assert (tmp_path / "live.db").exists()


def test_check_config_into_a_closed_pipe_exits_0_without_a_traceback(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before riskon writes a byte, as with `riskon check-config | head -0`
    try:
        result = subprocess.run([sys.executable, "-m", "bot", "check-config", str(REPO / "config.yaml")], cwd=tmp_path,
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
