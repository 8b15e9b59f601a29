"""Invite codes and the host's join desk: codes round-trip and fail with one clear message each;
an invite's secret funds a joiner's own account once, and nothing funds anyone without it."""

import asyncio
import json
import os
import time
import urllib.error
import urllib.request

import pytest

from desktop.invites import Invite, InviteBook, InviteError, decode
from tests.chain_fixtures import anvil, dev_accounts, w3  # noqa: F401
from tests.test_rpc_proxy import Running

CONTRACT = "0x" + "ab" * 20


def invite(**over) -> Invite:
    base = dict(rpc="http://10.0.0.1:8546", chain_id=31337, contract=CONTRACT, join="http://10.0.0.1:8546/join",
                id="abcdef123", secret="s" * 32, expires=int(time.time()) + 3600,
                boot=("/ip4/10.0.0.1/tcp/4001/p2p/QmHost",), name="lab swarm")
    base.update(over)
    return Invite(**base)


def test_a_code_and_its_link_round_trip():
    inv = invite()
    assert decode(inv.code()) == inv
    assert decode(inv.link()) == inv
    assert decode("  " + inv.code() + "\n") == inv  # pasted with whitespace
    data = json.dumps(inv.__dict__).lower()
    assert "private" not in data and "key" not in data  # a join secret, never a key


@pytest.mark.parametrize("text,message", [
    ("hello", "not an RL Swarm invite"),
    ("rlsw1.!!!!", "damaged"),
    ("rlsw1." + "A" * 5000, "not an RL Swarm invite"),
    ("rlswarm://join?nothing=1", "not an RL Swarm invite"),
])
def test_bad_codes_say_what_is_wrong(text, message):
    with pytest.raises(InviteError, match=message):
        decode(text)


def test_damaged_fields_each_have_a_message():
    good = invite().code()
    with pytest.raises(InviteError, match="damaged|incomplete"):
        decode(good[:-12])  # cut short
    for over, message in [(dict(expires=int(time.time()) - 5), "expired"), (dict(rpc="ftp://x"), "web address"),
                          (dict(contract="0x12"), "damaged"), (dict(chain_id=0), "no valid chain"),
                          (dict(boot=("x",) * 3), "multiaddrs"), (dict(boot=("/ip4/1",) * 9), "multiaddrs")]:
        with pytest.raises(InviteError, match=message):
            decode(invite(**over).code())


def test_the_book_counts_uses_expires_and_revokes(tmp_path):
    book = InviteBook(tmp_path)
    a1, a2, a3 = ("0x" + c * 40 for c in "123")
    invite_id, secret = book.create(expires_in=60, uses=2)
    assert oct(book.path.stat().st_mode & 0o777) == "0o600"
    assert secret not in book.path.read_text()  # only its hash is kept
    book.redeem(invite_id, secret, a1)
    book.redeem(invite_id, secret, a1)  # the same joiner again: not a second use
    book.redeem(invite_id, secret, a2)
    with pytest.raises(InviteError, match="used up"):
        book.redeem(invite_id, secret, a3)
    with pytest.raises(InviteError, match="not known"):
        book.redeem(invite_id, "wrong" * 5, a3)
    other, other_secret = book.create(expires_in=60, uses=5)
    assert book.revoke(other) and not book.revoke("nope-nope")
    with pytest.raises(InviteError, match="revoked"):
        book.redeem(other, other_secret, a3)
    late, late_secret = book.create(expires_in=0.01, uses=5)
    time.sleep(0.05)
    with pytest.raises(InviteError, match="expired"):
        book.redeem(late, late_secret, a3)
    with pytest.raises(InviteError, match="bad join"):
        book.redeem(invite_id, secret, "not an address")


def test_an_unreadable_book_refuses_every_join(tmp_path):
    book = InviteBook(tmp_path)
    book.path.parent.mkdir(parents=True)
    book.path.write_text("{ not json")
    with pytest.raises(InviteError, match="unreadable"):
        book.redeem("abcdef", "x" * 20, "0x" + "1" * 40)


# --- the join desk beside the chain proxy, over a real anvil ----------------------------------------

@pytest.fixture
def host(anvil, dev_accounts, tmp_path):  # noqa: F811
    from desktop.services.chain_writer import ChainWriter
    from desktop.services.join_desk import JoinDesk

    book = InviteBook(tmp_path / "host-data")
    holder = {}

    async def fund(address):
        if "writer" not in holder:
            holder["writer"] = ChainWriter(anvil.rpc_url, CONTRACT, funder_key=dev_accounts[4][1])
        return await holder["writer"].ensure_funded(address)

    desk = JoinDesk(book, fund, chain_id=31337, contract=CONTRACT)
    running = Running(anvil.rpc_url, join=desk)
    yield running.proxy, book, desk
    if "writer" in holder:
        asyncio.run_coroutine_threadsafe(holder["writer"].close(), running.loop).result(10)
    running.close()


def _join(url, body) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/join", data=json.dumps(body).encode() if isinstance(body, dict) else body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_an_invite_funds_the_joiners_own_account_once(host, w3):  # noqa: F811
    from eth_account import Account

    proxy, book, desk = host
    invite_id, secret = book.create(expires_in=600, uses=1)
    joiner = Account.create().address
    status, reply = _join(proxy.url, {"invite": invite_id, "secret": secret, "address": joiner})
    assert status == 200 and reply["funded"] is True and reply["chain_id"] == 31337
    assert w3.eth.get_balance(joiner) > 0
    other = Account.create().address
    status, reply = _join(proxy.url, {"invite": invite_id, "secret": secret, "address": other})
    assert status == 403 and "used up" in reply["error"]
    assert w3.eth.get_balance(other) == 0


def test_no_secret_no_funds(host, w3):  # noqa: F811
    from eth_account import Account

    proxy, book, desk = host
    invite_id, secret = book.create(expires_in=600, uses=5)
    victim = Account.create().address
    for body in [{"invite": invite_id, "address": victim}, {"invite": invite_id, "secret": "guess" * 6, "address": victim},
                 {"invite": "x" * 9, "secret": secret, "address": victim}, b"[" * 3000, b"\xff", os.urandom(5000)]:
        status, reply = _join(proxy.url, body)
        assert status in (400, 403) and "error" in reply
    book.revoke(invite_id)  # a revoked invite, with its real secret
    status, reply = _join(proxy.url, {"invite": invite_id, "secret": secret, "address": victim})
    assert status == 403 and "revoked" in reply["error"]
    assert w3.eth.get_balance(victim) == 0
    assert desk.funded == []


# --- joining: every failure says what is wrong and leaves the data dir as it was ------------------

def _snapshot(data):
    return sorted(str(p.relative_to(data)) for p in data.rglob("*")) if data.exists() else []


def test_join_failures_leave_nothing_behind(tmp_path, host, w3, dev_accounts):  # noqa: F811
    from tests.chain_fixtures import _deploy
    from desktop.joining import JoinError, join

    proxy, book, desk = host
    contract = _deploy(w3, dev_accounts).address
    data = tmp_path / "joiner"
    (data / "config").mkdir(parents=True)
    (data / "config" / "config.yaml").write_text("ports:\n  login: 3999\n")
    before = _snapshot(data)
    invite_id, secret = book.create(expires_in=600, uses=1)
    good = dict(rpc=proxy.url, join=proxy.url + "/join", contract=contract, id=invite_id, secret=secret)
    cases = [
        (dict(good, rpc="http://127.0.0.1:9"), 1, "does not answer"),
        (dict(good, chain_id=5), 2, "not for this host"),
        (dict(good, contract=CONTRACT), 2, "no coordinator"),
        (dict(good, secret="not-the-secret-at-all"), 2, "not known to the host"),
    ]
    for fields, exit_code, message in cases:
        with pytest.raises(JoinError, match=message) as err:
            join(invite(**fields).code(), data, data / "config" / "config.yaml", email="me@example.org")
        assert err.value.exit_code == exit_code
        assert _snapshot(data) == before, fields  # no account, no session, no profile
    joined = join(invite(**good).code(), data, data / "config" / "config.yaml", email="me@example.org")
    assert joined.funded and w3.eth.get_balance(joined.address) > 0
    saved = (data / "config" / "config.yaml").read_text()
    assert "profile: swarm" in saved and "login: 3999" in saved  # the user's own settings are kept
    assert secret not in (data / "swarm.json").read_text()  # the secret is not kept by the joiner either


def test_join_check_tells_a_non_tcp_bootnode_from_a_closed_port():
    import socket

    from desktop.joining import check_invite

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # closed again on leaving: nothing listens there
    udp = "/ip4/127.0.0.1/udp/4001/quic/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    dead = f"/ip4/127.0.0.1/tcp/{closed}/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    url = f"http://127.0.0.1:{closed}"
    said = {detail.split()[0]: detail for check, ok, detail in check_invite(
        invite(rpc=url, join=url + "/join", boot=(udp, dead)).code()) if check == "bootnode" and not ok}
    assert said[udp] == f"{udp} is not a TCP address"
    assert said[dead].startswith(f"{dead} does not answer (") and "forward this TCP port" in said[dead]
