"""The web dashboard of a headless node, against a real tiny `rl-swarm node` and a real headless
Chromium (Debian's, driven over its DevTools protocol): the page needs its token, refuses other
host names and commands from other sites, fills its charts while the node trains, and its Pause
button pauses the node."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from desktop.config import DashboardConfig
from desktop.dashboard.serve import CONTAINER_ENV, open_dashboard
from desktop.dashboard.token import token_path
from desktop.dashboard.view import PeerView
from tests.procs import CLI, ROOT, EventProcess, env, free_port, node_args

pytestmark = pytest.mark.slow


def _http(url: str, *, body: dict | None = None, headers: dict | None = None, raw: bytes | None = None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _raw_get(port: int, path: str, host: str) -> int:
    """A GET with a Host header of our choosing (what a DNS-rebinding page would send)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return int(sock.recv(64).split()[1])


@pytest.fixture
def node(tmp_path):
    port = free_port()
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(f"training:\n  max_new_tokens: 24\ndashboard:\n  port: {port}\nevaluation:\n  every: 3\n  problems: 4\n")
    data = tmp_path / "data"
    proc = EventProcess(node_args(data, "--rounds", "40", config=cfg, dashboard=True), tmp_path / "node.err")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "dashboard: http" not in (tmp_path / "node.err").read_text():
        time.sleep(0.2)
    said = (tmp_path / "node.err").read_text()
    url = re.search(r"dashboard: (http://\S+)", said).group(1)
    assert f"ssh -L {port}:127.0.0.1:{port}" in said
    yield proc, url, port, data
    proc.stop()


def test_the_page_guards_itself_and_the_api_follows_the_node(node):
    proc, url, port, data = node
    token = token_path(data).read_text().strip()
    assert oct(token_path(data).stat().st_mode & 0o777) == "0o600" and url.endswith(token)
    base = url.split("/?")[0]
    assert _http(base + "/")[0] == 401 and _http(base + "/?token=wrong")[0] == 401
    assert _http(base + "/api/state")[0] == 401
    assert _http(base + "/app.js?token=" + token)[0] == 404  # nothing but the page and its API
    assert _raw_get(port, "/?token=" + token, "evil.example") == 421
    status, page = _http(url)
    assert status == 200 and b"Finish round and stop" in page
    head = {"X-Dashboard-Token": token}
    assert proc.wait_for(lambda e: e["type"] == "round_finished", 240)
    for _ in range(20):  # the page's view takes the event right after it is written out
        state = json.loads(_http(base + "/api/state", headers=head)[1])["peers"][0]
        if state["history"]:
            break
        time.sleep(0.1)
    assert state["state"] in ("training", "waiting") and state["history"] and state["peer_id"].startswith("Qm")
    command = {"peer": "this peer", "action": "pause"}
    assert _http(base + "/api/control", body=command, headers={**head, "Content-Type": "application/json",
                                                                "Origin": "http://evil.example"})[0] == 403
    assert _http(base + "/api/control", raw=b"peer=this+peer&action=pause",
                 headers={**head, "Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    assert _http(base + "/api/control", body=command, headers={"Content-Type": "application/json"})[0] == 401
    assert proc.count("paused") == 0  # none of those reached the node
    healthy = _health(data)  # the container's health check reads the same page
    assert healthy.returncode == 0 and healthy.stdout.startswith("healthy: this peer "), healthy
    address = _health(data, "--url")  # how a container's user gets the address (its log never has the token)
    assert address.returncode == 0 and address.stdout.strip() == url, address
    status, reply = _http(base + "/api/control", body=command, headers={**head, "Content-Type": "application/json"})
    assert status == 200, reply
    assert proc.wait_for(lambda e: e["type"] == "paused", 60)
    paused = _health(data)  # a peer its user paused is not broken
    assert paused.returncode == 0 and "this peer paused" in paused.stdout, paused
    proc.stop()
    gone = _health(data)
    assert gone.returncode == 1 and gone.stdout.startswith("unhealthy: no dashboard"), gone


def _health(data: Path, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["health", "--data-dir", str(data), "--config", str(data.parent / "fast.yaml"), *more],
                          capture_output=True, text=True, cwd=ROOT, env=env(), timeout=120)


def test_in_a_container_the_page_listens_wide_but_answers_loopback_names_only(monkeypatch, tmp_path, capsys):
    """A container's 127.0.0.1 is its own: there the page listens on the container's network (which
    docker-compose.yaml publishes on the host's 127.0.0.1 only) and still refuses other host names."""
    monkeypatch.setenv(CONTAINER_ENV, "1")
    warned: list[str] = []
    server = open_dashboard(DashboardConfig(port=0), tmp_path, {"this peer": PeerView("this peer")},
                            lambda peer, action: "", warned.append)
    try:
        assert server.bind == "0.0.0.0" and not warned
        said = capsys.readouterr().err  # a container's stderr is its log: how to get the address, not the token
        assert "rl-swarm health --url" in said and server.token not in said
        assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")
        assert _raw_get(server.port, "/api/state", "evil.example") == 421
        assert _raw_get(server.port, "/api/state", f"127.0.0.1:{server.port}") == 401  # and the token still counts
        assert _http(server.url)[0] == 200
    finally:
        server.stop()


async def _devtools(port: int, url: str, steps):
    """Open ``url`` in the browser behind DevTools ``port`` and run ``steps(evaluate)``."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{port}/json/new?{url}") as reply:
            target = await reply.json()
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=64 << 20) as ws:
            ids = iter(range(1, 10_000))

            async def call(method: str, **params):
                mine = next(ids)
                await ws.send_json({"id": mine, "method": method, "params": params})
                while True:
                    msg = await ws.receive_json(timeout=60)
                    if msg.get("id") == mine:
                        return msg.get("result", {})

            async def evaluate(expression: str):
                result = await call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
                return result.get("result", {}).get("value")

            return await steps(call, evaluate)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_in_a_real_browser_the_charts_fill_and_pause_pauses(node, tmp_path):
    proc, url, _, _ = node
    debug = free_port()
    browser = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={debug}",
                                f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,900", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{debug}/json/version", timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        shots = {}

        async def steps(call, evaluate):
            async def until(expression: str, seconds: float) -> bool:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    if await evaluate(expression):
                        return True
                    await asyncio.sleep(0.5)
                return False

            lines = "document.querySelectorAll('#c1 path').length > 0 && document.querySelector('#c1 path').getAttribute('d').split('L').length >= 2"
            assert await until(lines, 240), "the reward chart did not fill"
            assert await evaluate("document.querySelector('#pill').textContent") in ("training", "waiting")
            shots["training"] = (await call("Page.captureScreenshot"))["data"]
            await evaluate("document.querySelector('#pause').click()")
            assert await until("document.querySelector('#pill').textContent === 'paused'", 60), "the page never said paused"
            assert await evaluate("!document.querySelector('#resume').disabled")
            shots["paused"] = (await call("Page.captureScreenshot"))["data"]

        asyncio.run(_devtools(debug, url, steps))
        assert proc.wait_for(lambda e: e["type"] == "paused", 30) or proc.count("paused") >= 1
        out = Path(tmp_path / "shots")
        out.mkdir()
        for name, data in shots.items():
            (out / f"dashboard-{name}.png").write_bytes(base64.b64decode(data))
            assert (out / f"dashboard-{name}.png").stat().st_size > 20_000  # a rendered page, not a blank one
    finally:
        browser.terminate()
        browser.wait(20)


@pytest.mark.gui
def test_the_app_attaches_to_a_node_elsewhere_and_steers_it(node, qtbot, tmp_path):
    """File > Connect to a node…: a window for the node behind a dashboard URL (as an SSH tunnel
    gives it), its history, its rounds live, and Pause / Resume / Finish round and stop reaching
    it; the app's own data dir is left alone; closing the window leaves the node running."""
    from desktop.gui.app import protect_singletons
    from desktop.gui.context import AppContext
    from desktop.gui.processes.supervisor import ProcState
    from desktop.gui.shell.main_window import MainWindow

    protect_singletons()
    proc, url, _, _ = node
    assert proc.wait_for(lambda e: e["type"] == "round_finished", 240)
    home = MainWindow(AppContext.create(tmp_path / "mine"))
    home.quit_app = lambda: None
    qtbot.addWidget(home)
    assert home.attach(url.split("?")[0]) is None  # no token in the address: said at once, no window
    assert home.visible_notices()[-1].title == "Cannot connect"
    wrong = home.attach(url.replace("token=", "token=x"))  # a wrong token: the node says so
    qtbot.addWidget(wrong)
    qtbot.waitUntil(lambda: any(n.title == "The node refused the token" for n in wrong.visible_notices()), timeout=20_000)
    assert wrong.node.state is ProcState.CRASHED
    wrong.close()
    window = home.attach(url)
    qtbot.addWidget(window)
    remote = window.node
    qtbot.waitUntil(lambda: remote.state is ProcState.RUNNING and bool(remote.status.history), timeout=30_000)
    assert "settings" not in window.page_names() and not window.actions.start.isEnabled()
    rounds = len(window.dashboard.reward_chart.xs)
    qtbot.waitUntil(lambda: len(window.dashboard.reward_chart.xs) > rounds, timeout=120_000)  # live
    window.actions.pause.hour.trigger()  # sent by Qt's network access: the test waits in Qt's loop
    qtbot.waitUntil(lambda: proc.count("paused") >= 1, timeout=60_000)
    qtbot.waitUntil(lambda: remote.status.paused == "user" and window.actions.pause.resume.isEnabled(), timeout=10_000)
    window.actions.pause.resume.trigger()
    qtbot.waitUntil(lambda: proc.count("resumed") >= 1, timeout=60_000)
    window.close()  # only the window goes
    assert proc.proc.poll() is None
    again = home.attach(url)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.node.state is ProcState.RUNNING, timeout=30_000)
    again.actions.finish.trigger()
    qtbot.waitUntil(lambda: proc.count("node_stopped") >= 1, timeout=240_000)
    qtbot.waitUntil(lambda: again.node.state is ProcState.STOPPED, timeout=20_000)
    assert not (tmp_path / "mine" / "control.json").exists()  # the app's own node was never touched
