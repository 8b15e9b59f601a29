"""The Resources settings page and the pause actions (tray and Node menu), on real files."""

import subprocess
import time

import pytest
import yaml

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from desktop.machine import pause_control  # noqa: E402
from desktop.gui.context import AppContext  # noqa: E402
from desktop.gui.shell.pause_actions import FilePause, PauseActions  # noqa: E402
from desktop.gui.settings import ResourcesPage, SettingsWidget  # noqa: E402
from tests.procs import CLI, env  # noqa: E402


@pytest.fixture
def ctx(tmp_path):
    return AppContext.create(tmp_path / "peer")


def test_resources_round_trip_through_disk(qtbot, ctx):
    w = SettingsWidget(ctx)
    qtbot.addWidget(w)
    page = w.page(ResourcesPage)
    page.threads.setValue(1)
    page.only_idle.setChecked(True)
    page.idle_minutes.setValue(12.5)
    page.battery.setChecked(False)
    page.schedule.setChecked(True)
    page.run_from.setTime(page.run_from.time().fromString("22:00", "HH:mm"))
    page.run_until.setTime(page.run_until.time().fromString("07:30", "HH:mm"))
    for day in ("sat", "sun"):
        page.days[day].setChecked(False)
    page.memory_limit.setValue(4096)
    page.min_free.setValue(10)
    assert w.save(), w.message.text()

    r = yaml.safe_load(ctx.paths.config_file.read_text())["resources"]
    assert r == {"threads": 1, "only_when_idle": True, "idle_minutes": 12.5, "pause_on_battery": False,
                 "schedule": True, "run_from": "22:00", "run_until": "07:30",
                 "run_days": ["mon", "tue", "wed", "thu", "fri"], "memory_limit_mb": 4096,
                 "min_free_percent": 10.0}
    assert ctx.load_config().resources.run_days == ["mon", "tue", "wed", "thu", "fri"]  # the node reads it

    again = SettingsWidget(ctx)
    qtbot.addWidget(again)
    p2 = again.page(ResourcesPage)
    assert (p2.threads.value(), p2.only_idle.isChecked(), p2.idle_minutes.value()) == (1, True, 12.5)
    assert p2.run_from.time().toString("HH:mm") == "22:00" and p2.run_until.isEnabled()
    assert not p2.days["sun"].isChecked() and p2.days["mon"].isChecked()
    assert (p2.memory_limit.value(), p2.min_free.value()) == (4096, 10.0)


def test_defaults_write_nothing_and_bad_choices_are_refused(qtbot, ctx):
    w = SettingsWidget(ctx)
    qtbot.addWidget(w)
    assert w.save()
    assert "resources" not in (yaml.safe_load(ctx.paths.config_file.read_text()) or {})
    page = w.page(ResourcesPage)
    page.schedule.setChecked(True)
    for box in page.days.values():
        box.setChecked(False)
    assert page.validate() and "at least one day" in page.validate()
    before = ctx.paths.config_file.read_text()
    assert not w.save()
    assert ctx.paths.config_file.read_text() == before  # nothing half saved
    page.days["wed"].setChecked(True)
    page.memory_limit.setValue(100)
    assert "256 MB" in page.validate()


def test_the_page_says_whether_idle_time_can_be_known(qtbot, ctx):
    known = ResourcesPage(ctx, idle_source=lambda: "X11 screen saver")
    unknown = ResourcesPage(ctx, idle_source=lambda: None)
    qtbot.addWidget(known)
    qtbot.addWidget(unknown)
    assert "X11 screen saver" in known.idle_note.text()
    assert "cannot pause" in unknown.idle_note.text()


def test_pause_actions_write_the_file_the_node_reads(qtbot, tmp_path):
    holder = SettingsWidget(AppContext.create(tmp_path / "p"))  # any QObject parent
    qtbot.addWidget(holder)
    actions = PauseActions(holder, FilePause(tmp_path / "data"), poll_ms=100)
    path = pause_control.control_path(tmp_path / "data")
    assert not actions.resume.isEnabled() and actions.label == ""
    actions.hour.trigger()
    got = pause_control.read(path)
    assert got.when == "now" and abs(got.until - (time.time() + 3600)) < 30
    assert actions.resume.isEnabled() and actions.label.startswith("Paused until")
    actions.resume.trigger()
    assert not path.exists() and not actions.resume.isEnabled()
    actions.after_round.trigger()
    assert pause_control.read(path).when == "after-round" and actions.label == "Pausing after this round"
    actions.resume.trigger()
    # `rl-swarm pause` from a terminal: the menu catches up by itself
    subprocess.run(CLI + ["pause", "--data-dir", str(tmp_path / "data")], check=True, env=env(), capture_output=True)
    qtbot.waitUntil(lambda: actions.resume.isEnabled(), timeout=5000)
    assert actions.label == "Paused until you resume"
