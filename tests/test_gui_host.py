"""File > Host a swarm…: the dialog saves the hosting settings, the real services supervisor
brings the services' `hosting` event, and an invite is made by a real `rl-swarm host invite`
child: shown as code, link and a QR code; Stop hosting saves it off again."""

import pytest

pytest.importorskip("PySide6")
pytestmark = [pytest.mark.gui, pytest.mark.slow]

from desktop.gui.processes.children import ServicesSupervisor  # noqa: E402
from desktop.gui.context import AppContext  # noqa: E402
from desktop.gui.dialogs.host_swarm import HostSwarm, preflight_text  # noqa: E402
from desktop.services.invites import InviteBook, decode  # noqa: E402
from tests.procs import free_port  # noqa: E402


def test_host_a_swarm_from_the_app(qtbot, tmp_path):
    data = tmp_path / "d"
    (data / "config").mkdir(parents=True)
    port, dht_port = free_port(), free_port()
    (data / "config" / "config.yaml").write_text(
        f"ports:\n  rpc: {free_port()}\n  login: {free_port()}\nhosting:\n  bind: 127.0.0.1\n")
    ctx = AppContext.create(data)
    services = ServicesSupervisor(lambda: ctx.services_command())
    host = HostSwarm(None, ctx, services)
    said = []
    host.changed.connect(said.append)

    dialog = host.ask(None)
    qtbot.addWidget(dialog)
    assert dialog.toggle.text() == "Start hosting" and dialog.name.isEnabled()
    assert not dialog.invite_box.isVisibleTo(dialog)  # no invites before the swarm is open
    dialog.name.setText("our lab")
    dialog.port.setValue(port)
    dialog.dht_port.setValue(dht_port)
    dialog.toggle.click()
    config = ctx.load_config()
    assert (config.hosting.enabled, config.hosting.name, config.hosting.port) == (True, "our lab", port)
    assert config.swarm.enabled and config.swarm.host == "127.0.0.1"  # the app's own peer on that interface
    assert said and "our lab" in said[-1]

    try:
        services.start()
        qtbot.waitUntil(lambda: host.last_event is not None, timeout=120_000)
        ev = host.last_event
        assert ev["error"] is None and ev["rpc_answers"] and ev["dht_answers"], ev
        text = preflight_text(ev, True)
        assert "127.0.0.1" in text and "does NOT" not in text and "forward" in text

        dialog = host.ask(None)
        qtbot.addWidget(dialog)
        assert dialog.toggle.text() == "Stop hosting" and not dialog.port.isEnabled()
        assert "127.0.0.1" in dialog.preflight.text()
        dialog.uses.setValue(3)
        assert dialog.make_invite()
        assert not dialog.make_invite()  # one at a time
        qtbot.waitUntil(lambda: bool(dialog.invite_code), timeout=60_000)
        invite = decode(dialog.invite_code)
        assert (invite.name, invite.rpc) == ("our lab", f"http://127.0.0.1:{port}")
        assert "rlswarm://join?code=" in dialog.code.toPlainText()
        assert not dialog.qr.pixmap().isNull() and dialog.qr.pixmap().width() > 100
        assert InviteBook(data).entries()[invite.id].uses_left == 3  # as chosen in the dialog

        dialog.toggle.click()  # Stop hosting
        config = ctx.load_config()
        assert not config.hosting.enabled and config.swarm.host == "127.0.0.1"
        assert "Stopped hosting" in said[-1]
    finally:
        with qtbot.waitSignal(services.finished, timeout=60_000):
            services.stop()
