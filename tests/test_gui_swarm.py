"""The Swarm page: peers heard on the DHT merged with the chain's registered peers, read from a real
`rl-swarm chain status --json` child against real services, without blocking the window."""

import sys
import time
from dataclasses import dataclass, field

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from desktop.gui.pages.swarm import SwarmPage  # noqa: E402
from desktop.events.swarm_view import MAX_ROWS, merge  # noqa: E402
from tests.procs import CLI, Services  # noqa: E402


@dataclass
class Status:
    peer_id: str = "QmMe"
    heard: dict = field(default_factory=dict)


def name(peer: str) -> str:
    return f"name of {peer}"


def test_merge_marks_me_first_and_joins_both_sources():
    chain = {"peers": [{"peer_id": "QmA", "name": "alpha", "total_reward": 5, "wins": 1},
                       {"peer_id": "QmMe", "name": "me", "total_reward": 1, "wins": 0}, "junk", {"peer_id": 7}]}
    rows = merge(chain, {"QmA": {"round": 4, "ts": 10.0}, "QmB": {"round": 3, "ts": 9.0}}, "QmMe", name)
    assert [r["peer_id"] for r in rows] == ["QmMe", "QmA", "QmB"]
    assert rows[0]["me"] and not rows[1]["me"]
    assert (rows[1]["round"], rows[1]["total_reward"]) == (4, 5)
    assert rows[2]["total_reward"] is None and rows[2]["name"] == "name of QmB"  # heard, not registered
    many = {f"Qm{i}": {"round": 1, "ts": float(i)} for i in range(1000)}
    assert len(merge(None, many, None, name)) == MAX_ROWS  # bounded whatever the DHT holds


def test_the_page_reads_a_real_chain_in_the_background(qtbot, tmp_path):
    services = Services(tmp_path / "svc")
    services.start()
    try:
        org = services.account("me@local.rl-swarm.net")
        services.api("/api/register-peer", {"orgId": org, "peerId": "QmRegisteredPeer"})
        status = Status(heard={"QmHeardOnly": {"round": 2, "ts": time.time() - 5}})
        page = SwarmPage(lambda: [sys.executable, *CLI[1:], "chain", "status", "--json", "--data-dir",
                                  str(tmp_path / "svc")], lambda: status)
        qtbot.addWidget(page)
        started = time.monotonic()
        page.refresh()  # a second refresh while one runs is ignored, not a second process
        assert time.monotonic() - started < 0.5  # never waits on the child
        qtbot.waitUntil(lambda: page.chain is not None or bool(page.chain_error), timeout=60000)
        assert page.chain is not None, page.chain_error
        cells = [[page.table.item(r, c).text() for c in range(page.table.columnCount())]
                 for r in range(page.table.rowCount())]
        ids = [row[1] for row in cells]
        assert ids[0] == "QmMe" and cells[0][0].endswith("(you)")
        assert "QmRegisteredPeer" in ids and "QmHeardOnly" in ids
        heard = cells[ids.index("QmHeardOnly")]
        assert heard[2] == "2" and heard[5].endswith("s ago")
        assert "registered on the chain" in page.summary.text()
    finally:
        services.stop()


def test_no_chain_is_said_on_the_page(qtbot, tmp_path):
    page = SwarmPage(lambda: [sys.executable, *CLI[1:], "chain", "status", "--json", "--data-dir", str(tmp_path)],
                     lambda: Status())
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: bool(page.chain_error), timeout=60000)
    assert "no local chain" in page.chain_error
    assert "chain: no local chain" in page.summary.text()
    assert page.table.rowCount() == 1  # this peer, still listed
