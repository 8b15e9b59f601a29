"""Release feed (desktop.utils.updates): served on 127.0.0.1 by a real HTTP server; checked at most daily,
never when off; bad feeds ignored with a log line; a download that does not match its sha256 is not kept."""

import hashlib
import http.server
import json
import logging
import threading

import pytest

from desktop.utils import updates

ARTIFACT = b"\x7fELF a newer release" * 1000


@pytest.fixture
def server():
    served = {"feed": b"", "artifact": ARTIFACT, "requests": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served["requests"].append(self.path)
            body = served["feed"] if self.path == "/feed.json" else served["artifact"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    served["url"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield served
    httpd.shutdown()


def _feed(server, version="0.2.0", sha=None, **extra):
    artifact = {"url": server["url"] + "/rl-swarm-desktop_0.2.0_amd64.deb",
                "sha256": sha or hashlib.sha256(ARTIFACT).hexdigest(), "size": len(ARTIFACT)}
    server["feed"] = json.dumps({"version": version, "notes": "Faster rounds.",
                                 "artifacts": {"linux-deb": artifact, "linux-tarball": artifact}, **extra}).encode()
    return server["url"] + "/feed.json"


@pytest.mark.slow
def test_a_newer_release_is_offered_once_a_day(server, tmp_path):
    url, state = _feed(server), tmp_path / "update-check.json"
    found = updates.check(url, "0.1.0", state, platform="linux-deb", now=1_000_000)
    assert found == updates.Update("0.2.0", "Faster rounds.", server["url"] + "/rl-swarm-desktop_0.2.0_amd64.deb",
                                   hashlib.sha256(ARTIFACT).hexdigest(), len(ARTIFACT))
    assert updates.check(url, "0.1.0", state, platform="linux-deb", now=1_000_000 + 3600) is None
    assert server["requests"] == ["/feed.json"]  # the second call made no request
    assert updates.check(url, "0.1.0", state, platform="linux-deb", now=1_000_000 + 86_401) is not None
    assert server["requests"] == ["/feed.json", "/feed.json"]


def test_turned_off_or_without_a_feed_nothing_is_asked(server, tmp_path):
    url = _feed(server)
    assert updates.check(url, "0.1.0", tmp_path / "s.json", enabled=False, platform="linux-deb") is None
    assert updates.check(None, "0.1.0", tmp_path / "s.json", platform="linux-deb") is None
    assert server["requests"] == []
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("feed, says", [
    (b"<html>not a feed</html>", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({"version": "0.0.9", "artifacts": {}}).encode(), "not newer"),
    (json.dumps({"version": "0.1.0", "artifacts": {}}).encode(), "not newer"),
    (json.dumps({"version": "latest", "artifacts": {}}).encode(), "not X.Y.Z"),
    (json.dumps({"version": "0.2.0", "artifacts": {"macos": {}}}).encode(), "no linux-deb artifact"),
    (json.dumps({"version": "0.2.0", "artifacts": {"linux-deb": {"url": "ftp://x/y", "sha256": "0" * 64}}}).encode(),
     "not https"),
    (json.dumps({"version": "0.2.0", "artifacts": {"linux-deb": {"url": "https://x/y", "sha256": "abc"}}}).encode(),
     "no valid sha256"),
    (json.dumps({"version": "0.2.0", "artifacts": {"linux-deb": {"url": "https://x/y", "sha256": "0" * 64}}}).encode(),
     "no valid size"),
    (json.dumps({"version": "0.2.0", "artifacts": {"linux-deb": {"url": "http://127.0.0.1.evil.example/x",
                                                                 "sha256": "0" * 64, "size": 5}}}).encode(), "not https"),
    (json.dumps({"version": "0.2.0", "artifacts": {"linux-deb": {"url": "http://127.0.0.1@evil.example/x",
                                                                 "sha256": "0" * 64, "size": 5}}}).encode(), "not https"),
    (b"{" + b" " * (updates.MAX_FEED_BYTES + 10) + b"}", "larger than"),
])
@pytest.mark.slow
def test_a_bad_feed_is_ignored_with_a_log_line(server, tmp_path, caplog, feed, says):
    server["feed"] = feed
    with caplog.at_level(logging.INFO, logger="desktop.utils.updates"):
        assert updates.check(server["url"] + "/feed.json", "0.1.0", tmp_path / "s.json", platform="linux-deb") is None
    assert says in caplog.text


def test_an_unreachable_feed_is_a_log_line_not_an_error(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="desktop.utils.updates"):
        assert updates.check("http://127.0.0.1:9/feed.json", "0.1.0", tmp_path / "s.json", platform="linux-deb") is None
    assert "unreachable" in caplog.text


@pytest.mark.slow
def test_download_keeps_only_a_file_that_matches_its_sha256(server, tmp_path):
    good = updates.parse_feed(server["feed"] or json.dumps({}).encode(), "0.1.0", "linux-deb")
    assert good is None  # no feed served yet
    _feed(server)
    update = updates.parse_feed(server["feed"], "0.1.0", "linux-deb")
    seen = []
    path = updates.download(update, tmp_path / "dl", progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == ARTIFACT
    assert seen[-1] == (len(ARTIFACT), len(ARTIFACT))
    _feed(server, sha="0" * 64)
    wrong = updates.parse_feed(server["feed"], "0.1.0", "linux-deb")
    with pytest.raises(updates.UpdateError, match="does not match"):
        updates.download(wrong, tmp_path / "dl2")
    assert list((tmp_path / "dl2").iterdir()) == []  # nothing half-downloaded is left


def test_the_app_offers_the_update_and_downloads_it(qtbot, server, tmp_path):
    from desktop.gui.app import protect_singletons
    from desktop.gui.context import AppContext
    from desktop.gui.shell.main_window import MainWindow
    from desktop.gui.update_check import UpdateCheck

    protect_singletons()
    ctx = AppContext.create(tmp_path / "data")
    ctx.paths.config.mkdir(parents=True)
    ctx.paths.config_file.write_text(f"updates:\n  feed_url: {_feed(server)}\n")
    win = MainWindow(ctx)
    win.quit_app = lambda: None
    qtbot.addWidget(win)
    check = UpdateCheck(win, downloads=tmp_path / "Downloads")
    with qtbot.waitSignal(check.found, timeout=10_000):
        check.check_now()
    offer = win.visible_notices()[-1]
    assert offer.title == "Version 0.2.0 is available"
    assert "Faster rounds." in offer.text
    with qtbot.waitSignal(check.downloaded, timeout=10_000):
        offer.action_button.click()
    assert (tmp_path / "Downloads" / "rl-swarm-desktop_0.2.0_amd64.deb").read_bytes() == ARTIFACT
    assert win.visible_notices()[-1].title == "Update downloaded"


# --- what a hostile feed or artifact server can do: nothing outside the downloads folder, no hang ---

def _update(server, path, size=len(ARTIFACT), sha=None):
    return updates.Update("0.2.0", "", server["url"] + path, sha or hashlib.sha256(ARTIFACT).hexdigest(), size)


@pytest.mark.parametrize("path", ["/.", "/..", "/%2e%2e", "/a/..%2F..%2Fevil", "/.hidden", "/x.part", "/"])
def test_a_download_lands_in_the_downloads_folder_whatever_the_url(server, tmp_path, path):
    folder = tmp_path / "outer" / "Downloads"
    got = updates.download(_update(server, path), folder)
    assert got.parent == folder and got.read_bytes() == ARTIFACT
    assert sorted(p.name for p in (tmp_path / "outer").iterdir()) == ["Downloads"]  # nothing beside it
    assert [p.name for p in folder.iterdir()] == [got.name]  # no .part left behind


def test_a_download_stops_at_the_size_the_feed_gives(server, tmp_path):
    with pytest.raises(updates.UpdateError, match="larger than the feed says"):
        updates.download(_update(server, "/big.deb", size=len(ARTIFACT) - 1), tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []


def test_urls_are_judged_by_their_real_host():
    ok = ["https://example.org/feed.json", "http://127.0.0.1:8000/f", "http://localhost/f", "http://[::1]:9/f"]
    bad = ["http://127.0.0.1.evil.example/x", "http://127.0.0.1@evil.example/x", "http://evil.example/x",
           "https://user:pw@example.org/x", "ftp://127.0.0.1/x", "http://127.0.0.1:99999/x", "https://a b/x", 5]
    assert all(updates.acceptable_url(u) for u in ok)
    assert not any(updates.acceptable_url(u) for u in bad)


@pytest.fixture
def trickle():
    """A server that sends its headers, then one byte of the body every second."""
    import socket
    import time as _time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                while not stop.is_set():
                    try:
                        conn.sendall(b"{")
                    except OSError:
                        break
                    _time.sleep(1.0)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def test_a_trickling_feed_cannot_hold_the_check_past_its_deadline(trickle, tmp_path, monkeypatch, caplog):
    import time as _time

    monkeypatch.setattr(updates, "CHECK_DEADLINE_S", 3.0)
    started = _time.monotonic()
    with caplog.at_level(logging.INFO, logger="desktop.utils.updates"):
        assert updates.check(trickle + "/feed.json", "0.1.0", tmp_path / "s.json", platform="linux-deb") is None
    assert _time.monotonic() - started < 6.0
    assert "did not arrive within" in caplog.text
    started = _time.monotonic()
    with pytest.raises(updates.UpdateError, match="took longer"):
        updates.download(updates.Update("0.2.0", "", trickle + "/a.deb", "0" * 64, 1000), tmp_path / "dl", deadline_s=3.0)
    assert _time.monotonic() - started < 6.0 and list((tmp_path / "dl").iterdir()) == []
