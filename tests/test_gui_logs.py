"""The logs page: level and source filters, search, follow-tail that pauses on scroll-up, bounds."""

import sys

import pytest
from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication

from desktop import events
from desktop.gui.app import protect_singletons
from desktop.event_text import ERROR, INFO, WARNING, describe, record_level
from desktop.gui.pages.logs import LogsPage
from desktop.gui.children import NodeSupervisor
from desktop.gui.supervisor import ProcState

pytestmark = pytest.mark.gui
protect_singletons()  # PySide6 6.12 on Python 3.11 drops references to None (see desktop.gui.app)


@pytest.fixture
def page(qtbot, tmp_path):
    widget = LogsPage(tmp_path / "logs")
    widget.resize(900, 400)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _record(level, message, logger="desktop.node"):
    return events.make("log", level=level, logger=logger, message=message)


def test_a_records_level_is_its_own_never_a_word_in_its_text():
    assert describe(_record("INFO", "ERROR: this is only text")) == (INFO, "desktop.node: ERROR: this is only text")
    assert describe(_record("WARNING", "gather timed out"))[0] == WARNING
    assert [record_level(n) for n in ("CRITICAL", "DEBUG", "NOTSET", "Level 25", "SHOUT", 5)] == [
        ERROR, 10, 10, INFO, INFO, INFO]


def test_a_record_with_a_traceback_is_one_level_line_by_line(page):
    page.append_event("node", _record("ERROR", "step failed\nTraceback (most recent call last):\n  File \"x\"\n"
                                      "ValueError: bad"))
    page.append_event("node", _record("INFO", "round 3 checkpoint"))
    page.flush()
    lines = page.visible_lines()
    assert [line.split()[2] for line in lines] == ["ERROR"] * 4 + ["INFO"]
    assert lines[0].endswith("desktop.node: step failed")
    assert lines[3].endswith("ValueError: bad")
    page.level_box.setCurrentIndex(4)  # events only: records are not news
    assert page.visible_lines() == []


def test_every_event_type_reads_as_a_line():
    samples = [
        events.make("node_started", peer_id="Qm1", name="a b c", model="tiny", device="cpu", round=0, role="solver"),
        events.make("round_finished", round=2, seconds=1.5, generate_s=1.0, judge_s=0.2, train_s=0.2, comm_s=0.1,
                    reward_mean=0.7),
        events.make("train_step", round=2, loss=0.5, seconds=0.1, skipped=False, samples=4, own_logp=-0.3,
                    external_logp=None, external_share=0.0),
        events.make("hf_push", round=2, repo="u/r", ok=False),
        events.make("error", message="boom"),
        events.make("chain_submitted", round=3, sent=0, already=0, failed=2, pending=2, error="rpc down"),
        events.make("node_stopped", reason="signal", round=2, exit_code=0),
    ]
    lines = [describe(ev) for ev in samples]
    assert lines[1] == (INFO, "round 2 finished in 1.50 s: reward 0.7 (generate 1.00, judge 0.20, train 0.20, "
                              "comm 0.10 s)")
    assert lines[3][0] == WARNING
    assert lines[4] == (ERROR, "boom")
    assert lines[5] == (WARNING, "round 3: chain submissions 0 sent, 0 already there, 2 failed, 2 pending: rpc down")


def test_filters_and_search(page, qtbot):
    page.append_event("node", _record("INFO", "loading model"))
    page.append_event("node", _record("WARNING", "gather timed out"))
    page.append_event("services", _record("ERROR", "port in use", logger="anvil"))
    page.append_event("node", events.make("round_started", round=4, stage=0, problems=1))
    page.flush()
    assert len(page.visible_lines()) == 4
    page.level_box.setCurrentIndex(2)  # warnings and errors
    assert [line.split()[2] for line in page.visible_lines()] == ["WARN", "ERROR"]
    page.source_box.setCurrentIndex(1)  # node only
    assert len(page.visible_lines()) == 1
    assert "gather" in page.visible_lines()[0]
    page.source_box.setCurrentIndex(0)
    page.level_box.setCurrentIndex(4)  # events only
    assert len(page.visible_lines()) == 1
    assert "round 4 stage 0 started" in page.visible_lines()[0]
    page.level_box.setCurrentIndex(0)
    page.search.setText("ANVIL")  # case-insensitive, applied once typing pauses
    qtbot.waitUntil(lambda: len(page.visible_lines()) == 1, timeout=2000)
    assert "port in use" in page.visible_lines()[0]
    page.search.clear()
    qtbot.waitUntil(lambda: len(page.visible_lines()) == 4, timeout=2000)
    page.copy()
    assert QGuiApplication.clipboard().text().count("\n") == 3


def test_follow_tail_pauses_on_scroll_up_and_resumes_at_bottom(page, qtbot):
    for i in range(500):
        page.append_line("node", f"INFO line {i}")
    qtbot.waitUntil(lambda: len(page.visible_lines()) == 500, timeout=2000)  # the batch timer flushed
    bar = page.view.verticalScrollBar()
    assert bar.maximum() > 0
    assert bar.value() == bar.maximum()
    assert page.following
    bar.setValue(10)  # the reader scrolls up
    assert not page.following
    assert page.paused_bar.isVisibleTo(page)
    for i in range(500, 600):
        page.append_line("node", f"INFO line {i}")
    page.flush()
    assert len(page.visible_lines()) == 500
    assert bar.value() == 10  # frozen while reading
    assert "100 new lines" in page.paused_label.text()
    bar.setValue(bar.maximum())  # back at the bottom: follow again, with what arrived meanwhile
    assert page.following
    assert not page.paused_bar.isVisibleTo(page)
    assert len(page.visible_lines()) == 600
    assert page.visible_lines()[-1].endswith("INFO line 599")
    assert bar.value() == bar.maximum()
    bar.setValue(0)
    page.resume_button.click()  # "Jump to latest" does the same
    assert page.following
    assert bar.value() == bar.maximum()


@pytest.mark.slow
def test_line_count_stays_bounded(qtbot, tmp_path):
    page = LogsPage(tmp_path, max_lines=1000)
    qtbot.addWidget(page)
    for i in range(5000):
        page.append_line("node", f"INFO line {i}")
    page.flush()
    assert len(page.ring) == 1000
    assert page.view.blockCount() == 1000
    assert page.visible_lines()[0].endswith("line 4000")
    assert page.visible_lines()[-1].endswith("line 4999")
    page.view.verticalScrollBar().setValue(0)  # paused: more than the ring holds arrives
    for i in range(5000, 7500):
        page.append_line("node", f"INFO line {i}")
    page.resume()
    assert page.view.blockCount() == 1000
    assert page.visible_lines()[-1].endswith("line 7499")
    page.clear()
    assert page.visible_lines() == []
    assert len(page.ring) == 0


class _UrlCatcher(QObject):
    def __init__(self):
        super().__init__()
        self.urls = []

    @Slot("QUrl")
    def open(self, url):
        self.urls.append(url.toLocalFile())


def test_open_log_folder(page, tmp_path):
    catcher = _UrlCatcher()  # instead of launching the desktop's file manager
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        page.folder_button.click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert catcher.urls == [str(tmp_path / "logs")]
    assert (tmp_path / "logs").is_dir()


def test_live_output_of_a_real_process(page, qtbot):
    record = events.make("log", level="ERROR", logger="desktop.node", message="disk almost full")
    script = ("import sys, json, time\n"
              f"print({events.encode(record)!r}, flush=True)\n"
              "print('INFO: looks like a level, is not one', file=sys.stderr)\n"
              "print('Traceback (most recent call last):', file=sys.stderr, flush=True)\n"
              f"print({events.encode(events.make('warning', message='slow peer'))!r}, flush=True)\n")
    sup = NodeSupervisor(lambda: [sys.executable, "-c", script])
    page.connect_supervisor(sup, "node")
    with qtbot.waitSignal(sup.finished, timeout=20000):
        sup.start()
    assert sup.state is ProcState.CRASHED or sup.state is ProcState.STOPPED
    sup.stop()  # no automatic restart of this one-shot script
    page.flush()
    # stdout and stderr are two pipes: their lines may interleave either way
    tags = {line.split(None, 3)[3]: line.split()[2] for line in page.visible_lines()}
    # the record keeps its level; raw stderr is what no logger wrote: a warning, whatever it says
    assert tags == {"desktop.node: disk almost full": "ERROR", "INFO: looks like a level, is not one": "WARN",
                    "Traceback (most recent call last):": "WARN", "slow peer": "WARN"}
