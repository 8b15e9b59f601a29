"""A peer's history survives restarts: the node keeps one line per finished round in
<data dir>/history.jsonl (bounded, a torn last line skipped), and the app's dashboard loads it at
launch, so its charts and totals show every round the peer played."""

from __future__ import annotations

import json
import subprocess

import pytest

from desktop.events import make
from desktop.events.history import HistoryFile, history_file, read_history
from tests.procs import CLI, ROOT, env, node_args


def _round(r: int, reward: float) -> list[dict]:
    return [make("round_started", round=r, stage=0, problems=1, confirmed=r % 2 == 0),
            make("train_step", round=r, loss=0.1, seconds=0.1, skipped=False, samples=4, own_logp=-0.3,
                 external_logp=None, external_share=0.0),
            make("round_finished", round=r, seconds=1.0, generate_s=0.5, judge_s=0.2, train_s=0.1, comm_s=0.2,
                 reward_mean=reward)]


def test_rows_are_appended_bounded_and_a_torn_line_is_skipped(tmp_path):
    path = history_file(tmp_path)
    listener = HistoryFile(path, keep=5)
    for r in range(4):
        for ev in _round(r, 0.1 * r):
            listener(ev)
    rows = read_history(path)
    assert [r["round"] for r in rows] == [0, 1, 2, 3] and rows[2]["reward_mean"] == pytest.approx(0.2)
    assert rows[0]["confirmed"] and not rows[1]["confirmed"] and rows[0]["loss"] == 0.1
    with open(path, "a") as out:  # a node killed while writing
        out.write('{"round": 4, "reward_mea')
    assert [r["round"] for r in read_history(path)] == [0, 1, 2, 3]
    again = HistoryFile(path, keep=5)  # the next run goes on in the same file
    for r in range(4, 12):
        for ev in _round(r, 0.5):
            again(ev)
    rows = read_history(path)
    assert len(path.read_text().splitlines()) <= 10  # never more than 2 x keep
    assert [r["round"] for r in rows][-3:] == [9, 10, 11]
    path.write_text("garbage\n[1, 2]\n" + json.dumps({"round": "x"}) + "\n" + json.dumps({"round": 7, "loss": "nan"}))
    assert read_history(path) == []


@pytest.mark.slow
def test_a_node_run_twice_keeps_one_history(tmp_path):
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("training:\n  max_new_tokens: 24\nevaluation:\n  every: 2\n  problems: 4\n")
    data = tmp_path / "data"
    for rounds in (2, 2):
        done = subprocess.run(CLI + node_args(data, "--rounds", str(rounds), config=cfg), capture_output=True,
                              text=True, cwd=ROOT, env=env(), timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    rows = read_history(history_file(data))
    assert [r["round"] for r in rows] == [0, 1, 2, 3]  # the second run resumed from round 2
    assert rows[0]["skill"] is not None and rows[2]["skill"] is not None  # skill checked at steps 0 and 2
    assert all(-1.4 <= r["reward_mean"] <= 1.2 for r in rows)


@pytest.mark.gui
def test_the_dashboard_opens_with_the_whole_history(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    from desktop.gui.app import build_window, protect_singletons
    from desktop.gui.context import AppContext

    protect_singletons()
    listener = HistoryFile(history_file(tmp_path))
    for r in range(6):
        for ev in _round(r, 0.1 * r):
            listener(ev)
    win = build_window(AppContext.create(tmp_path), QApplication.instance())
    win.quit_app = lambda: None
    qtbot.addWidget(win)
    dash = win.dashboard
    win.node.status_changed.emit(win.node.status.snapshot())
    assert dash.reward_chart.xs == [0, 1, 2, 3, 4, 5]
    assert dash.card_total.value.text() == "1.5"  # 0 + 0.1 + ... + 0.5
    assert "over 6 rounds" in dash.card_total.hint.text()
    assert dash.table.rowCount() == 6
