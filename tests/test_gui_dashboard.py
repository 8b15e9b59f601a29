"""The dashboard redraws its charts when a round finishes, not on every event."""

import pytest

import desktop.gui  # noqa: F401  (PySide6 refcount workaround before Qt)
from desktop.events import make
from desktop.gui.node_status import NodeStatus
from desktop.gui.pages.dashboard import DashboardPage

pytestmark = pytest.mark.gui


def _round(r: int) -> list[dict]:
    return [make("round_started", round=r, stage=0, problems=1),
            make("train_step", round=r, loss=0.05 * r, seconds=0.1, skipped=False, samples=4),
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
