"""The whole flow, as a user meets it: start the app -> the local services come up -> sign in on
the real login page (driven with runJavaScript) -> the node starts -> the dashboard shows rounds."""

import pytest

import desktop.gui  # noqa: F401  (PySide6 refcount workaround before Qt)
from desktop.gui.app import build_window, create_app
from desktop.gui.context import AppContext
from desktop.gui.dialogs.first_run import KEY_DONE
from desktop.gui.flow import AppFlow
from desktop.gui.login_view import LoginView
from desktop.gui.settings.general import gui_settings

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _js(view, code):
    view.page().runJavaScript(code)


def _read(qtbot, view, expr):
    box = {}
    view.page().runJavaScript(expr, 0, lambda value: box.setdefault("v", value))
    qtbot.waitUntil(lambda: "v" in box, timeout=10_000)
    return box["v"]


def test_start_sign_in_node_runs_dashboard_shows_rounds(qtbot, tmp_path):
    ctx = AppContext.create(tmp_path)
    ctx.paths.config.mkdir(parents=True, exist_ok=True)
    ctx.paths.config_file.write_text("profile: local\ntraining:\n  max_new_tokens: 32\n")
    gui_settings(ctx).setValue(KEY_DONE, True)  # the wizard has its own test
    app = create_app()
    window = build_window(ctx, app, ("--pool", "tiny"))
    qtbot.addWidget(window)
    flow = AppFlow(window)
    window.show()
    try:
        flow.start()
        # the local chain + login server start, nobody is signed in: the login page appears
        qtbot.waitUntil(lambda: "login" in window.page_names(), timeout=120_000)
        window.show_page("login")
        page = window.page("login")
        login = page if isinstance(page, LoginView) else page.findChild(LoginView)
        qtbot.waitUntil(lambda: _read(qtbot, login.view, "!!document.querySelector('#signin')") is True,
                        timeout=60_000)
        assert window.node.state.name == "STOPPED"  # no node before sign-in

        _js(login.view, "document.querySelector('#email').value = 'ada@example.org';"
                        "document.querySelector('#signin').click();")
        launched = []
        flow.node_launched.connect(lambda: launched.append(True))
        try:
            qtbot.waitUntil(lambda: bool(launched), timeout=120_000)
        except qtbot.TimeoutError:  # say what the page showed, not only that nothing happened
            status = _read(qtbot, login.view, "document.querySelector('#status').textContent")
            pytest.fail(f"no node after sign-in; the page says {status!r}; "
                        f"services {window.services.state.name}")
        qtbot.waitUntil(lambda: "login" not in window.page_names(), timeout=30_000)

        dashboard = window.page("dashboard")
        qtbot.waitUntil(lambda: dashboard.status is not None and len(dashboard.status.history) >= 1,
                        timeout=240_000)
        status = dashboard.status
        assert status.peer_id.startswith("Qm")
        assert status.model == "tiny:tiny"
        assert dashboard.name_label.text().lower() == status.name  # shown title-cased
        assert dashboard.table.rowCount() >= 1
        assert dashboard.card_round.findChildren(type(dashboard.name_label))  # the card rendered
    finally:
        for sup in (window.node, window.services):
            sup.shutdown(timeout=20)
    assert window.node.state.name in ("STOPPED", "CRASHED")
