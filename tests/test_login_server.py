"""The local login server over real HTTP on 127.0.0.1, against a real anvil and coordinator."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import stat
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import keyring
import pytest
from keyring.backends import fail

from desktop.services.chain_writer import ChainWriter, Reverted
from desktop.services.login_server import SECRET_HEADER, LoginServer

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def peer_id() -> str:
    """A fresh base58 peer id ("Qm" + 44 characters, like an RSA libp2p id)."""
    return "Qm" + "".join(secrets.choice(B58) for _ in range(44))


@pytest.fixture(scope="module", autouse=True)
def _no_keyring():
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # headless Linux; never the developer's real keyring
    yield
    keyring.set_keyring(before)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("login-data")


@pytest.fixture(scope="module")
def server(data_dir, anvil, coordinator, dev_accounts):
    srv = LoginServer(data_dir, anvil.rpc_url, coordinator.address, port=0,
                      funder_key=dev_accounts[0][1]).run_in_thread()
    yield srv
    srv.stop_thread()


def request(srv, method, path, body=None, *, token=True, headers=None, raw=None):
    """``(status, content_type, text)``; error statuses come back instead of raising."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    if token is True:
        hdrs["Authorization"] = f"Bearer {srv.api_token}"
    elif token:
        hdrs["Authorization"] = token
    hdrs.update(headers or {})
    req = urllib.request.Request(srv.url + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get_content_type(), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get_content_type(), err.read().decode()


def call(srv, method, path, body=None, **kw):
    status, _, text = request(srv, method, path, body, **kw)
    assert "Traceback" not in text
    assert "File \"" not in text
    return status, (json.loads(text) if text.startswith(("{", "[")) else text)


def page(srv) -> dict:
    """What the app's own sign-in page sends: this session's secret, no bearer token."""
    return {SECRET_HEADER: srv.session_secret}


def sign_in(srv, email):
    status, info = call(srv, "POST", "/login", {"email": email}, token=None, headers=page(srv))
    assert status == 200, info
    return info


@pytest.fixture(scope="module")
def account(server):
    return sign_in(server, "main@example.com")


def test_refuses_non_loopback_hosts(tmp_path):
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com", "::ffff:127.0.0.1"):
        with pytest.raises(ValueError, match="127.0.0.1"):
            LoginServer(tmp_path, "http://127.0.0.1:1", "0x" + "00" * 20, host=host)


def test_serves_the_login_page(server):
    status, ctype, html = request(server, "GET", "/", token=None)
    assert status == 200
    assert ctype == "text/html"
    assert "<title>RL Swarm — local sign-in</title>" in html
    for element in ('id="email"', 'id="signin"', 'id="status"', 'id="address"', 'id="peers"'):
        assert element in html
    assert "https://" not in html
    assert "//cdn" not in html  # self-contained
    with urllib.request.urlopen(server.url + "/", timeout=10) as resp:
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    for path, kind in (("/login.js", "application/javascript"), ("/style.css", "text/css")):
        status, ctype, text = request(server, "GET", path, token=None)
        assert status == 200
        assert ctype == kind
        assert "https://" not in text
    assert "prefers-color-scheme: dark" in request(server, "GET", "/style.css", token=None)[2]
    assert call(server, "GET", "/../secrets", token=None)[0] == 404


def test_sign_in_creates_a_funded_encrypted_account(server, account, data_dir, w3, caplog):
    assert account["signedIn"]
    assert account["email"] == "main@example.com"
    assert account["address"].startswith("0x")
    assert account["peers"] == []
    assert w3.eth.get_balance(account["address"]) > 0  # funded from the dev account for gas
    status, info = call(server, "GET", "/login/status", token=None)
    assert status == 200
    assert info["signedIn"]
    assert info["orgId"] == account["orgId"]
    assert server.api_token not in json.dumps(info)
    key = server.store.private_key(account["orgId"]).removeprefix("0x")
    blob = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert key.encode() not in blob
    assert key.upper().encode() not in blob
    assert server.store.get(account["orgId"]).secret_store == "file"  # no keyring backend here
    if sys.platform != "win32":
        for path in [server.api_token_file, *(data_dir / "accounts").glob("*.json")]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert len(server.api_token) == 64
    # Logs of a whole request cycle name neither the key nor the token.
    caplog.set_level(logging.DEBUG)
    sign_in(server, "main@example.com")
    call(server, "POST", "/api/register-peer", {"orgId": account["orgId"], "peerId": peer_id()})
    assert key not in caplog.text
    assert server.api_token not in caplog.text


def test_same_email_same_account_after_restart(server, account, data_dir, anvil, coordinator):
    again = sign_in(server, "Main@Example.com")
    assert (again["orgId"], again["address"], again["created"]) == (account["orgId"], account["address"], False)
    token = server.api_token
    second = LoginServer(data_dir, anvil.rpc_url, coordinator.address, port=0).run_in_thread()
    try:
        # Still signed in after the restart, with the same token, before any new sign-in.
        status, info = call(second, "GET", "/api/user-data")
        assert status == 200
        assert info["orgId"] == account["orgId"]
        assert second.api_token == token
        info = sign_in(second, "main@example.com")
        assert (info["orgId"], info["address"]) == (account["orgId"], account["address"])
    finally:
        second.stop_thread()


def test_api_needs_the_token(server, account):
    body = {"orgId": account["orgId"], "peerId": peer_id()}
    for token in (None, "Bearer wrong", f"Basic {server.api_token}", f"Bearer {server.api_token}x", "Bearer"):
        status, reply = call(server, "POST", "/api/register-peer", body, token=token)
        assert (status, reply) == (401, {"error": "unauthorized"}), token
    assert call(server, "GET", f"/api/get-api-key-status?orgId={account['orgId']}", token=None)[0] == 401
    assert call(server, "GET", "/api/user-data", token=None)[0] == 401


def test_sign_in_refuses_cross_site_requests(server):
    form = b"email=x%40example.com"
    assert request(server, "POST", "/login", raw=form, token=None,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    body = {"email": "evil@example.com"}
    assert call(server, "POST", "/login", body, token=None, headers={"Origin": "https://evil.example"})[0] == 403
    assert call(server, "POST", "/login", body, token=None, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert call(server, "POST", "/login/logout", {}, token=None, headers={"Origin": "null"})[0] == 403
    # DNS rebinding: a foreign name that resolves to 127.0.0.1.
    assert call(server, "GET", "/login/status", token=None, headers={"Host": "evil.example:80"})[0] == 403
    own = {"Origin": server.url.replace("127.0.0.1", "localhost"), "Host": f"localhost:{server.port}"}
    assert call(server, "GET", "/login/status", token=None, headers=own)[0] == 200
    assert call(server, "POST", "/login", {"email": "not-an-email"}, token=None, headers=page(server))[0] == 400


def test_register_peer(server, account, w3, coordinator):
    pid = peer_id()
    status, reply = call(server, "POST", "/api/register-peer", {"orgId": account["orgId"], "peerId": pid})
    assert status == 200
    assert reply["hash"].startswith("0x")
    assert len(reply["hash"]) == 66
    assert w3.eth.get_transaction_receipt(reply["hash"])["status"] == 1
    assert coordinator.functions.getEoa([pid]).call() == [account["address"]]
    status, reply = call(server, "POST", "/api/register-peer", {"orgId": account["orgId"], "peerId": pid})
    assert status == 400
    assert reply["error"] == "PeerIdAlreadyRegistered"
    assert any("PeerIdAlreadyRegistered" in m for m in reply["metaMessages"])
    assert pid in call(server, "GET", "/login/status", token=None)[1]["peers"]
    assert pid in call(server, "GET", "/api/user-data")[1]["peers"]


def test_concurrent_requests_of_one_account_do_not_collide(server, coordinator):
    info = sign_in(server, "many-peers@example.com")
    pids = [peer_id() for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda p: call(server, "POST", "/api/register-peer",
                                               {"orgId": info["orgId"], "peerId": p}), pids))
    assert [s for s, _ in replies] == [200] * 6, replies
    assert len({r["hash"] for _, r in replies}) == 6
    assert coordinator.functions.getEoa(pids).call() == [info["address"]] * 6


def test_submit_reward(server, account, coordinator):
    pid = peer_id()
    assert call(server, "POST", "/api/register-peer", {"orgId": account["orgId"], "peerId": pid})[0] == 200
    current = coordinator.functions.currentRound().call()
    body = {"orgId": account["orgId"], "roundNumber": current, "stageNumber": 0, "reward": 7, "peerId": pid}
    status, reply = call(server, "POST", "/api/submit-reward", body)
    assert status == 200
    assert reply["hash"].startswith("0x")
    assert coordinator.functions.getTotalRewards([pid]).call() == [7]
    status, reply = call(server, "POST", "/api/submit-reward", body)
    assert (status, reply["error"]) == (400, "RewardAlreadySubmitted")
    status, reply = call(server, "POST", "/api/submit-reward", {**body, "roundNumber": current + 1000})
    assert (status, reply["error"]) == (400, "InvalidRoundNumber")
    status, reply = call(server, "POST", "/api/submit-reward", {**body, "stageNumber": 1})
    assert (status, reply["error"]) == (400, "InvalidStageNumber")


def test_submit_winner(server, account, coordinator):
    voter, winner = peer_id(), peer_id()
    for pid in (voter, winner):
        assert call(server, "POST", "/api/register-peer", {"orgId": account["orgId"], "peerId": pid})[0] == 200
    current = coordinator.functions.currentRound().call()
    body = {"orgId": account["orgId"], "roundNumber": current, "winners": [winner], "peerId": voter}
    status, reply = call(server, "POST", "/api/submit-winner", body)
    assert status == 200
    assert reply["hash"].startswith("0x")
    assert coordinator.functions.getTotalWins(winner).call() == 1
    status, reply = call(server, "POST", "/api/submit-winner", body)
    assert (status, reply["error"]) == (400, "WinnerAlreadyVoted")
    status, reply = call(server, "POST", "/api/submit-winner", {**body, "peerId": peer_id()})
    assert (status, reply["error"]) == (400, "InvalidVoterPeerId")


def test_unknown_org_and_api_key_status(server, account):
    unknown = "0" * 32
    for path, body in (("/api/register-peer", {"orgId": unknown, "peerId": peer_id()}),
                       ("/api/submit-reward", {"orgId": unknown, "roundNumber": 0, "stageNumber": 0,
                                               "reward": 1, "peerId": peer_id()}),
                       ("/api/submit-winner", {"orgId": unknown, "roundNumber": 0, "winners": [],
                                               "peerId": peer_id()})):
        assert call(server, "POST", path, body) == (404, {"error": "user not found"})
    status, ctype, text = request(server, "GET", f"/api/get-api-key-status?orgId={account['orgId']}")
    assert (status, ctype, text) == (200, "text/plain", "activated")
    assert call(server, "GET", f"/api/get-api-key-status?orgId={unknown}")[0] == 404
    assert call(server, "GET", "/api/get-api-key-status")[0] == 404


def test_bad_requests_are_400_or_413_without_traceback(server, account):
    org = account["orgId"]
    good = {"orgId": org, "roundNumber": 0, "stageNumber": 0, "reward": 1, "peerId": peer_id()}
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe", b"", b'{"orgId": "a", "orgId": "b"}', b"[" * 5000):
        status, reply = call(server, "POST", "/api/submit-reward", raw=raw)
        assert status == 400, raw[:20]
        assert reply["error"] == "bad request", raw[:20]
    bad_fields = [{"roundNumber": "1"}, {"roundNumber": True}, {"roundNumber": -1}, {"roundNumber": 2**256},
                  {"roundNumber": 1.5}, {"stageNumber": None}, {"reward": 2**255}, {"reward": -(2**255) - 1},
                  {"peerId": "Qm0OIl"}, {"peerId": "Q" * 129}, {"peerId": 12}, {"peerId": ""},
                  {"orgId": 5}, {"orgId": ""}]
    for change in bad_fields:
        status, reply = call(server, "POST", "/api/submit-reward", {**good, **change})
        assert status == 400, change
        assert reply["error"] == "bad request", change
        assert reply["detail"], change
    winners = {"orgId": org, "roundNumber": 0, "peerId": peer_id()}
    for change in ({"winners": "Qmabc"}, {"winners": [peer_id() for _ in range(17)]}, {"winners": [1]}):
        assert call(server, "POST", "/api/submit-winner", {**winners, **change})[0] == 400
    big = json.dumps({**good, "pad": "x" * 70_000}).encode()
    assert call(server, "POST", "/api/submit-reward", raw=big) == (413, {"error": "request too large"})
    assert call(server, "GET", "/api/nothing-here") == (404, {"error": "not found"})
    assert call(server, "GET", "/api/register-peer")[0] == 405


def test_logout_then_sign_in_again(server, account):
    other = sign_in(server, "second@example.com")
    assert call(server, "GET", "/api/user-data")[1]["orgId"] == other["orgId"]
    assert call(server, "POST", "/api/logout") == (200, {"signedOut": True})
    assert call(server, "GET", "/api/user-data") == (404, {"error": "not signed in"})
    assert call(server, "GET", "/login/status", token=None) == (200, {"signedIn": False})
    # Signed out of the page, the node's account still works: the API is keyed by orgId.
    assert call(server, "POST", "/api/register-peer", {"orgId": other["orgId"], "peerId": peer_id()})[0] == 200
    assert sign_in(server, "main@example.com")["orgId"] == account["orgId"]
    assert call(server, "POST", "/login/logout", {}, token=None, headers=page(server)) == (200, {"signedOut": True})
    sign_in(server, "main@example.com")


def test_mined_revert_is_named_by_replaying_the_call(anvil, coordinator, dev_accounts, w3):
    """A tx that passes estimation but reverts when mined (a race) still maps to its error name."""
    key = dev_accounts[3][1]
    pid = peer_id()

    async def scenario():
        writer = ChainWriter(anvil.rpc_url, coordinator.address)
        try:
            await writer.transact(key, "registerPeer", pid)
            tx = {"to": coordinator.address, "data": coordinator.encode_abi("registerPeer", args=[pid]),
                  "gas": 300_000, "gasPrice": w3.eth.gas_price, "chainId": w3.eth.chain_id}
            with pytest.raises(Reverted) as caught:  # explicit gas: no estimation, so it is mined
                await writer._send(key, dev_accounts[3][0], tx, "registerPeer")
            return caught.value
        finally:
            await writer.close()

    reverted = asyncio.run(scenario())
    assert reverted.name == "PeerIdAlreadyRegistered"
    assert reverted.detail.startswith("transaction 0x")


def test_a_nonce_taken_by_another_process_is_retried(anvil, coordinator, dev_accounts):
    address, key = dev_accounts[4]
    pid = peer_id()

    async def scenario():
        writer = ChainWriter(anvil.rpc_url, coordinator.address)
        real_nonce, calls = writer._nonce, []

        async def stale_once(addr):  # as if another process sent between our read and our send
            calls.append(addr)
            nonce = await real_nonce(addr)
            return nonce - 1 if len(calls) == 1 else nonce

        writer._nonce = stale_once
        try:
            return await writer.transact(key, "registerPeer", pid), len(calls)
        finally:
            await writer.close()

    # The account must have sent one transaction already for nonce - 1 to be a used one.
    asyncio.run(_register(anvil, coordinator, key))
    tx_hash, tries = asyncio.run(scenario())
    assert tx_hash.startswith("0x")
    assert tries == 2
    assert coordinator.functions.getEoa([pid]).call() == [address]


async def _register(anvil, coordinator, key):
    writer = ChainWriter(anvil.rpc_url, coordinator.address)
    try:
        await writer.transact(key, "registerPeer", peer_id())
    finally:
        await writer.close()


def test_the_page_signs_in_in_a_real_web_view(server, qtbot):
    """The page's own script in Chromium (QtWebEngine, offscreen): fill, click, read #status."""
    pytest.importorskip("PySide6.QtWebEngineWidgets")
    from PySide6.QtCore import QUrl
    from PySide6.QtWebEngineWidgets import QWebEngineView

    call(server, "POST", "/api/logout")  # before the load: the page shows the form, not a session
    view = QWebEngineView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.loadFinished, timeout=15000):
        view.load(QUrl(server.url + f"/#s={server.session_secret}"))  # as the app opens it
    view.page().runJavaScript(
        "document.getElementById('email').value = 'webview@example.com';"
        "document.getElementById('signin').click();")
    seen = {}

    def read(key, expr):
        view.page().runJavaScript(expr, 0, lambda value: seen.__setitem__(key, value))

    def signed_in():
        read("status", "document.getElementById('status').textContent")
        read("address", "document.getElementById('address').textContent")
        read("email", "document.getElementById('account-email').textContent")
        assert seen.get("status") == "signed in"
        assert seen.get("email") == "webview@example.com"
        assert seen.get("address", "").startswith("0x")

    qtbot.waitUntil(signed_in, timeout=15000)
    status, info = call(server, "GET", "/api/user-data")
    assert status == 200
    assert info["email"] == "webview@example.com"
    assert info["address"] == seen["address"]
    view.close()


def test_only_the_apps_page_or_the_token_may_switch_the_account(server, account):
    """Any local process reaches the server, and nodes started later use whoever is signed in:
    a POST without this session's secret (or the API token) changes nothing."""
    before = call(server, "GET", "/api/user-data")[1]
    assert before["orgId"]
    for headers in ({}, {SECRET_HEADER: ""}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: server.session_secret + "x"},
                    {SECRET_HEADER: server.api_token}, {"Authorization": f"Bearer {server.session_secret}"}):
        for path, body in (("/login", {"email": "intruder@example.com"}), ("/login/logout", {})):
            status, reply = call(server, "POST", path, body, token=None, headers=headers)
            assert (status, reply["error"]) == (403, "forbidden"), (path, headers)
    assert call(server, "GET", "/api/user-data")[1] == before
    # the headless path: whoever holds the API token may (rl-swarm swarm uses /api/local-account)
    status, info = call(server, "POST", "/login", {"email": "headless@example.com"})
    assert status == 200
    assert info["email"] == "headless@example.com"
    assert sign_in(server, before["email"])["orgId"] == before["orgId"]


def test_the_page_without_the_secret_cannot_sign_in(server, account, qtbot):
    """The page opened as any other program could open it (no #s=...) says why and signs no one in."""
    pytest.importorskip("PySide6.QtWebEngineWidgets")
    from PySide6.QtCore import QUrl
    from PySide6.QtWebEngineWidgets import QWebEngineView

    before = call(server, "GET", "/api/user-data")[1]
    call(server, "POST", "/api/logout")
    view = QWebEngineView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.loadFinished, timeout=15000):
        view.load(QUrl(server.url + "/"))
    view.page().runJavaScript("document.getElementById('email').value = 'page@example.com';"
                              "document.getElementById('signin').click();")
    seen = []

    def refused():
        view.page().runJavaScript("document.getElementById('status').textContent", 0, seen.append)
        assert seen
        assert "RL Swarm app" in seen[-1]

    qtbot.waitUntil(refused, timeout=15000)
    assert call(server, "GET", "/api/user-data") == (404, {"error": "not signed in"})
    view.close()
    assert sign_in(server, before["email"])["orgId"] == before["orgId"]
