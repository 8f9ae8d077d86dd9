"""Command-line misuse: options that contradict each other or cannot be honoured end in one clear line, exit 1/2."""

from __future__ import annotations

import sqlite3

import pytest

from bot.cli import main
from storage import Store
from tests.market import write_small_history


def test_a_replay_from_after_its_end_is_refused(tmp_path, capsys):
    # Was a silent replay of everything as warm-up, ending "no new alerts".
    folder, config = write_small_history(tmp_path)
    code = main(["replay", "--data", str(folder), "--config", str(config), "--db", str(tmp_path / "r.db"),
                 "--from", "2024-03-01", "--to", "2024-02-01"])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "riskon: --from 2024-03-01 is after --to 2024-02-01: no day would count as news")
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("speed", ["nan", "-inf", "0", "-1"])
def test_a_speed_that_is_not_above_zero_is_refused(tmp_path, capsys, speed):
    # nan was taken (every comparison with it is false) and replayed at an undefined pace.
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "--data", str(tmp_path), f"--speed={speed}"])
    assert exit_.value.code == 2
    assert "speed must be above 0 bars per second (or 'max')" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--csv", "--json", "--html"])
def test_a_backtest_output_that_cannot_be_written_is_one_line_naming_it(tmp_path, capsys, option):
    # Was a traceback (FileExistsError / NotADirectoryError) after the whole backtest had run.
    folder, config = write_small_history(tmp_path)
    target = str(config / "out")  # under a file: no folder can be made there
    code = main(["backtest", "--data", str(folder), "--config", str(config), option, target])
    err = capsys.readouterr().err
    assert code == 1
    assert f"riskon: {option} {target}: cannot write: " in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("span, says", [
    # Was "no CSV file matches a configured symbol", of files that matched.
    (["--to", "2023-12-01"], "--to 2023-12-01 is before the data's first day 2024-01-01"),
    # Was a replay of everything as warm-up, ending "no new alerts (already recorded in this database, or none in
    # the data)".
    (["--from", "2030-01-01"], "--from 2030-01-01 is after the data's last day 2024-04-29: no day would count as news"),
])
def test_a_replay_span_outside_the_data_says_where_the_data_is(tmp_path, capsys, span, says):
    folder, config = write_small_history(tmp_path)
    code = main(["replay", "--data", str(folder), "--config", str(config), "--db", str(tmp_path / "r.db"),
                 "--log-level", "ERROR", *span])
    assert code == 1
    assert capsys.readouterr().err.strip() == f"riskon: --data {folder}: {says}"


def test_a_rehearsal_from_after_the_data_is_refused(tmp_path, capsys):
    # Was a rehearsal with nothing to rehearse, then "still answering commands until stopped".
    folder, config = write_small_history(tmp_path)
    config.write_text(config.read_text() + f"storage: {{path: {tmp_path / 'live.db'}}}\n")
    code = main(["run", "--config", str(config), "--rehearse", str(folder), "--from", "2030-01-01",
                 "--log-level", "ERROR"])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"riskon: --rehearse {folder}: --from 2030-01-01 is after the data's last day 2024-04-29: "
        "no day would count as news")


def test_a_replay_into_a_database_with_chat_subscriptions_is_refused(tmp_path, capsys):
    # Was a replay that left every replayed alert pending for the live chats: the next `riskon run` on that database
    # would have sent them all (85 historical alerts here).
    folder, config = write_small_history(tmp_path)
    live = tmp_path / "riskon.db"
    store = Store.open(live)
    store.subscribe("telegram", "111")
    store.close()
    code = main(["replay", "--data", str(folder), "--config", str(config), "--db", str(live), "--log-level", "ERROR"])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"riskon: --db {live} holds 1 chat subscription(s), as the live bot's database does: a replay there would "
        "leave every replayed alert waiting for those chats. Use another --db (default: replay.db)")
    with sqlite3.connect(live) as db:
        assert db.execute("select count(*) from alerts").fetchone() == (0,)
        assert db.execute("select count(*) from deliveries").fetchone() == (0,)
    db.close()


def test_a_backtest_from_after_its_data_says_where_the_data_ends(tmp_path, capsys):
    # Was a whole report of "0 alerts, 0 leader signal episodes", as if the rules had found nothing.
    folder, config = write_small_history(tmp_path)
    code = main(["backtest", "--data", str(folder), "--config", str(config), "--from", "2030-01-01"])
    assert code == 1
    assert capsys.readouterr().err.strip().endswith(
        "riskon: --from 2030-01-01 is after the data's last day 2024-04-29: no alert could count")
