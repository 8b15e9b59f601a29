"""The login server against hostile local clients, over real sockets on 127.0.0.1: malformed HTTP
must not flood the logs (one short line each, rate-limited), and the session secret that guards
sign-in is new at every start and readable only by its owner."""

from __future__ import annotations

import logging
import re
import socket
import stat
import sys
import urllib.error
import urllib.request

import pytest

from desktop.utils.logs import RedactingFormatter
from desktop.services.login_server import MAX_LINE, SECRET_HEADER, LoginServer

NO_CHAIN = ("http://127.0.0.1:9", "0x" + "00" * 20)  # nothing here needs the chain


@pytest.fixture
def server(tmp_path):
    srv = LoginServer(tmp_path, *NO_CHAIN, port=0, use_keyring=False).run_in_thread()
    yield srv
    srv.stop_thread()


@pytest.fixture
def services_log(tmp_path):
    """A file handler as `rl-swarm services` has (root logger, INFO, redacting), and stderr's
    (WARNING) records, both collected while the test runs."""
    path = tmp_path / "services.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    console: list[logging.LogRecord] = []
    to_console = logging.Handler(logging.WARNING)
    to_console.emit = console.append
    root, level = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.addHandler(to_console)
    root.setLevel(logging.INFO)
    try:
        yield path, console
    finally:
        root.removeHandler(handler)
        root.removeHandler(to_console)
        root.setLevel(level)
        handler.close()


def _send(port: int, raw: bytes, *, close_early: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        if close_early:  # a body that never comes: the handler sees the client hang up
            return b""
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError:
            pass
        return reply


def _malformed(srv: LoginServer) -> list[tuple[bytes, bool]]:
    host = f"Host: 127.0.0.1:{srv.port}\r\n".encode()
    post = b"POST /login HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
    # past every check, so the handler itself meets the broken body
    admitted = post + f"{SECRET_HEADER}: {srv.session_secret}\r\n".encode()
    return [
        (post + b"Transfer-Encoding: chunked\r\n\r\nzz" + b"A" * 60_000 + b"\r\n0\r\n\r\n", False),
        (post + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 8000 + b"\r\n", False),
        (post + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", False),
        (b"GARBAGE" + b"\x01" * 8000 + b" / HTTP/1.1\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\n" + host + b"X-Bad: " + b"\x01" * 6000 + b"\r\n\r\n", False),
        (b"GET /" + b"B" * 9000 + b" HTTP/1.1\r\n" + host + b"\r\n", False),
        (b"GET / HTTP/9.9\r\n" + host + b"\r\n", False),
        (post + b"Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"", True),
        (admitted + b"Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"", True),
        (admitted + b"Content-Length: 900\r\n\r\n{\"email\": \"", True),
    ]


def test_malformed_requests_leave_a_few_short_lines(server, services_log):
    path, console = services_log
    before = path.stat().st_size if path.exists() else 0
    kinds = _malformed(server)
    for i in range(200):
        raw, close_early = kinds[i % len(kinds)]
        _send(server.port, raw, close_early=close_early)
    # the server still answers, and says so in one short line
    with urllib.request.urlopen(server.url + "/login/status", timeout=10) as resp:
        assert resp.status == 200
    server.stop_thread()  # flushes the "suppressed" summary
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text(encoding="utf-8")
    grown = path.stat().st_size - before
    lines = text.splitlines()
    # was ~30 KB to 128 KB *per request*: 200 of them rotated every kept log away
    assert grown < 40_000, f"{grown} bytes for 200 bad requests"
    assert all(len(line) <= MAX_LINE + 120 for line in lines), max(lines, key=len)[:500]
    assert "Traceback" not in text
    assert not re.search(r"(A{200}|B{200}|f{200}|\\x01(\\x01){60})", text)
    assert any("bad request" in line.lower() or "Error handling request" in line for line in lines)
    assert any("suppressed" in line for line in lines)
    # stderr gets at most the summary: a client's garbage is not the server's error
    ours = [r.getMessage() for r in console if r.name.startswith(("desktop.services", "aiohttp"))]
    assert all("suppressed" in message for message in ours), [m[:200] for m in ours]


def test_the_session_secret_is_private_and_new_at_every_start(tmp_path):
    first = LoginServer(tmp_path, *NO_CHAIN, port=0, use_keyring=False).run_in_thread()
    try:
        secret = first.session_secret
        assert len(secret) >= 40
        assert first.session_secret_file.read_text() == secret
        assert secret != first.api_token
        if sys.platform != "win32":
            assert stat.S_IMODE(first.session_secret_file.stat().st_mode) == 0o600
    finally:
        first.stop_thread()
    second = LoginServer(tmp_path, *NO_CHAIN, port=0, use_keyring=False).run_in_thread()
    try:
        assert second.session_secret != secret
        assert second.session_secret_file.read_text() == second.session_secret
    finally:
        second.stop_thread()


def test_deeply_nested_json_is_a_400_not_a_crash(server):
    """py_ecc (under web3) raises the recursion limit to 100,000, where json's C parser overflows
    the stack on 60,000 nested brackets: the whole services process died. desktop.utils.recursion_cap
    lowers it again; the body is refused and the server keeps serving."""
    import eth_account  # noqa: F401  (the import that raised the limit)

    assert sys.getrecursionlimit() <= 10_000
    for body in (b"[" * 60_000, b'{"a":' * 12_000):
        req = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/register-peer", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {server.api_token}"})
        try:
            urllib.request.urlopen(req, timeout=10)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        assert status in (400, 413)
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/login/status", timeout=10) as resp:
        assert resp.status == 200
