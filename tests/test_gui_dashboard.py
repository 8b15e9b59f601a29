"""The dashboard redraws its charts when a round finishes, not on every event."""

import pytest

import desktop.gui  # noqa: F401  (PySide6 refcount workaround before Qt)
from desktop.events import make
from desktop.node_status import NodeStatus
from desktop.gui.pages.dashboard import DashboardPage

pytestmark = pytest.mark.gui


def _round(r: int) -> list[dict]:
    return [make("round_started", round=r, stage=0, problems=1),
            make("train_step", round=r, loss=0.05 * r, seconds=0.1, skipped=False, samples=4, own_logp=-0.3,
                 external_logp=None, external_share=0.0),
            make("round_finished", round=r, seconds=1.0, generate_s=0.5, judge_s=0.2, train_s=0.1, comm_s=0.2,
                 reward_mean=0.1 * r)]


def test_charts_follow_rounds_and_ignore_other_events(qtbot):
    dash = DashboardPage()
    qtbot.addWidget(dash)
    st = NodeStatus()
    for ev in [make("node_started", peer_id="Qm1", name="a b c", model="tiny:tiny", device="cpu", round=0,
                    role="solver"), *_round(0), *_round(1)]:
        st.apply(ev)
    dash.apply_status(st.snapshot())
    assert dash.reward_chart.xs == [0, 1]
    drawn = dash.reward_chart.xs

    st.apply(make("chain_submitted", round=1, sent=1, already=0, failed=0, pending=0, error=None))
    dash.apply_status(st.snapshot())
    assert dash.reward_chart.xs is drawn  # not redrawn: no round finished
    assert dash.card_total.value.text() == "0.1"  # the cards still follow

    for ev in _round(2):
        st.apply(ev)
    dash.apply_status(st.snapshot())
    assert dash.reward_chart.xs == [0, 1, 2]
    assert dash.reward_chart.series["reward"] == pytest.approx([0.0, 0.1, 0.2])
    assert dash.table.item(0, 0).text() == "2"  # newest first


@pytest.mark.parametrize("width", [1024, 1200, 1600])
def test_dashboard_fits_the_window_from_1024_px(qtbot, tmp_path, width):
    from PySide6.QtWidgets import QApplication, QScrollArea

    from desktop.gui.app import build_window
    from desktop.gui.context import AppContext

    win = build_window(AppContext.create(tmp_path), QApplication.instance())
    win.quit_app = lambda: None
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    st = NodeStatus()  # the longest texts a user sees: a full peer id, the 1.5B model's name
    st.apply(make("node_started", peer_id="QmbnSVjLis67WoeQBFud3Fc3cpRYNrXrThfznfenmSTteh", name="agile tall whale",
                  model="Qwen/Qwen2.5-Coder-1.5B-Instruct", device="cuda", round=123456, role="solver"))
    for r in range(123456, 123458):  # a long-running peer in a large swarm
        st.apply(make("rollouts", round=r, own=32, received=96, peers=[f"Qm{i}" for i in range(12)], rejected={}))
        for ev in _round(r):
            st.apply(ev)
    dash = win.dashboard
    win.node.status_changed.emit(st.snapshot())  # what the node's supervisor sends: page and status bar
    win.show_news("Reward submitted: Round 123456: 2 submission(s) recorded on chain; 3 waiting to be retried.")
    win.resize(width, 780)
    qtbot.waitUntil(lambda: win.width() == width)
    QApplication.processEvents()
    scroll = dash.findChild(QScrollArea)
    assert win.statusBar().minimumSizeHint().width() <= width  # long news never pushes the bar out
    assert scroll.horizontalScrollBar().maximum() == 0  # no sideways scrolling
    for button in dash.findChildren(type(win.dashboard.copy_button)):
        if button.text():  # Start, Finish round and stop, Stop: whole, not clipped
            assert button.visibleRegion().boundingRect().width() == button.width(), button.text()
    assert dash.peer_id_label.text() == st.peer_id  # elided on screen, never in what it holds
    assert dash.card_model.value.text() == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
