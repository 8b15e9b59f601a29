"""Invite codes and the host's join desk: codes round-trip and fail with one clear message each;
an invite's secret funds a joiner's own account once, and nothing funds anyone without it."""

import asyncio
import json
import os
import time
import urllib.error
import urllib.request

import pytest

from desktop.services.invites import Invite, InviteBook, InviteError, decode
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
    ("rlsw2.!!!!", "damaged"),
    ("rlsw2." + "A" * 5000, "not an RL Swarm invite"),
    ("rlswarm://join?nothing=1", "not an RL Swarm invite"),
    ("rlsw1.eyJib290IjpbXX0", "older RL Swarm Desktop"),
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


def test_what_a_code_says_is_checked_before_it_is_shown():
    inv = invite(name="\x1b[2J\x1b]0;pwned\x07lab\nswarm")
    shown = decode(inv.code()).name
    assert shown.isprintable() and "\x1b" not in shown and "\n" not in shown and shown.endswith("lab?swarm")
    with pytest.raises(InviteError, match="not a date"):  # an expiry past any calendar: a message, not a traceback
        decode(invite(expires=10**30).code())
    with pytest.raises(InviteError, match="web address"):
        decode(invite(rpc="http://10.0.0.1:8546/\x1b[2J").code())
    code = inv.code()
    flipped = {code[:i] + ("A" if code[i] != "A" else "B") + code[i + 1:] for i in range(len("rlsw2."), len(code))}
    for damaged in flipped:  # every single-character change anywhere in the code is caught
        with pytest.raises(InviteError):
            decode(damaged)


def test_the_book_counts_uses_expires_and_revokes(tmp_path):
    book = InviteBook(tmp_path)
    a1, a2, a3 = ("0x" + c * 40 for c in "123")
    invite_id, secret = book.create(expires_in=60, uses=2)
    assert oct(book.path.stat().st_mode & 0o777) == "0o600"
    assert secret not in book.path.read_text()  # only its hash is kept
    assert book.redeem(invite_id, secret, a1) is True
    assert book.redeem(invite_id, secret, a1) is False  # the same joiner again: not a second use, no funds
    assert book.redeem(invite_id, secret, a2) is True
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
def host(anvil, w3, dev_accounts, tmp_path):  # noqa: F811
    from desktop.services.chain_writer import ChainWriter
    from desktop.services.join_desk import JoinDesk
    from tests.chain_fixtures import _deploy

    book = InviteBook(tmp_path / "host-data")
    contract = _deploy(w3, dev_accounts).address
    holder = {}

    async def fund(address):
        if "writer" not in holder:
            holder["writer"] = ChainWriter(anvil.rpc_url, contract, funder_key=dev_accounts[4][1])
        return await holder["writer"].ensure_funded(address)

    desk = JoinDesk(book, fund, chain_id=31337, contract=contract)
    running = Running(anvil.rpc_url, join=desk)
    _CONTRACTS[running.proxy.url] = contract
    yield running.proxy, book, desk
    if "writer" in holder:
        asyncio.run_coroutine_threadsafe(holder["writer"].close(), running.loop).result(10)
    running.close()


_CONTRACTS: dict[str, str] = {}  # proxy url -> the coordinator its join desk names


def _join(url, body, path="/join") -> tuple[int, dict]:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if isinstance(body, dict) else body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _signed_join(url, invite_id, secret, account, *, signer=None, nonce=None) -> tuple[int, dict]:
    """The joiner's two steps, as desktop.cli.join does them: a nonce, then the signed request."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from desktop.services.invites import join_message

    if nonce is None:
        status, reply = _join(url, {"invite": invite_id, "secret": secret}, "/join/challenge")
        if status != 200:
            return status, reply
        nonce = reply["nonce"]
    message = join_message(31337, _CONTRACTS[url], invite_id, nonce, account.address)
    signature = Account.sign_message(encode_defunct(text=message), private_key=(signer or account).key).signature
    return _join(url, {"invite": invite_id, "secret": secret, "address": account.address, "nonce": nonce,
                       "signature": "0x" + signature.hex().removeprefix("0x")})


def test_an_invite_funds_the_joiners_own_account_once(host, w3):  # noqa: F811
    from eth_account import Account

    proxy, book, desk = host
    invite_id, secret = book.create(expires_in=600, uses=1)
    joiner = Account.create()
    status, reply = _signed_join(proxy.url, invite_id, secret, joiner)
    assert status == 200 and reply["funded"] is True and reply["chain_id"] == 31337
    assert w3.eth.get_balance(joiner.address) > 0
    other = Account.create()
    status, reply = _signed_join(proxy.url, invite_id, secret, other)
    assert status == 403 and "used up" in reply["error"]
    assert w3.eth.get_balance(other.address) == 0


def test_a_join_must_be_signed_by_the_address_it_funds(host, w3):  # noqa: F811
    from eth_account import Account

    proxy, book, desk = host
    invite_id, secret = book.create(expires_in=600, uses=5)
    victim, attacker = Account.create(), Account.create()
    # unsigned (an older joiner, or someone naming any address): refused
    status, reply = _join(proxy.url, {"invite": invite_id, "secret": secret, "address": victim.address})
    assert status == 400 and "signed" in reply["error"]
    # signed by another key than the address's
    status, reply = _signed_join(proxy.url, invite_id, secret, victim, signer=attacker)
    assert status == 403 and "not signed by the key" in reply["error"]
    # a nonce the desk never issued, and a nonce spent once already
    status, reply = _signed_join(proxy.url, invite_id, secret, victim, nonce="made-up-nonce-123")
    assert status == 403 and "nonce" in reply["error"]
    _, issued = _join(proxy.url, {"invite": invite_id, "secret": secret}, "/join/challenge")
    _signed_join(proxy.url, invite_id, secret, victim, signer=attacker, nonce=issued["nonce"])
    status, reply = _signed_join(proxy.url, invite_id, secret, victim, nonce=issued["nonce"])
    assert status == 403 and "nonce" in reply["error"]
    # no challenge without the secret
    status, reply = _join(proxy.url, {"invite": invite_id, "secret": "guess" * 6}, "/join/challenge")
    assert status == 403
    assert w3.eth.get_balance(victim.address) == 0 and desk.funded == []
    assert book.entries()[invite_id].uses_left == 5


def test_concurrent_joins_fund_an_address_once_and_never_again(host, w3):  # noqa: F811
    """20 joins at once by one address on a one-use invite, then again after spending: one funding."""
    from concurrent.futures import ThreadPoolExecutor

    from eth_account import Account

    from desktop.chain.deploy import send_signed

    proxy, book, desk = host
    invite_id, secret = book.create(expires_in=600, uses=1)
    joiner = Account.create()
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: _signed_join(proxy.url, invite_id, secret, joiner), range(20)))
    assert all(status == 200 for status, _ in answers), answers
    assert sum(1 for _, reply in answers if reply["funded"]) == 1
    balance = w3.eth.get_balance(joiner.address)
    assert 0 < balance <= 10**18  # one funding's worth
    assert book.entries()[invite_id].uses_left == 0 and book.entries()[invite_id].joined == [joiner.address.lower()]
    # the joiner spends it all, then asks again with the used-up invite: nothing
    gas_price = w3.eth.gas_price
    send_signed(w3, joiner.key, {"to": Account.create().address, "value": balance - 21000 * gas_price, "gas": 21000,
                                 "gasPrice": gas_price, "nonce": 0, "chainId": 31337})
    for _ in range(5):
        status, reply = _signed_join(proxy.url, invite_id, secret, joiner)
        assert status == 200 and reply["funded"] is False and reply.get("already_joined")
    assert w3.eth.get_balance(joiner.address) == 0 and desk.funded == [joiner.address]


def test_no_secret_no_funds(host, w3):  # noqa: F811
    from eth_account import Account

    proxy, book, desk = host
    invite_id, secret = book.create(expires_in=600, uses=5)
    victim = Account.create()
    for body in [{"invite": invite_id, "address": victim.address},
                 {"invite": invite_id, "secret": "guess" * 6, "address": victim.address},
                 {"invite": "x" * 9, "secret": secret, "address": victim.address}, b"[" * 3000, b"\xff", os.urandom(5000)]:
        for path in ("/join", "/join/challenge"):
            status, reply = _join(proxy.url, body, path)
            assert status in (400, 403) and "error" in reply
    book.revoke(invite_id)  # a revoked invite, with its real secret
    status, reply = _signed_join(proxy.url, invite_id, secret, victim)
    assert status == 403 and "revoked" in reply["error"]
    assert w3.eth.get_balance(victim.address) == 0
    assert desk.funded == []


# --- joining: every failure says what is wrong and leaves the data dir as it was ------------------

def _snapshot(data):
    return sorted(str(p.relative_to(data)) for p in data.rglob("*")) if data.exists() else []


def test_join_failures_leave_nothing_behind(tmp_path, host, w3, dev_accounts):  # noqa: F811
    from desktop.cli.join import JoinError, join

    proxy, book, desk = host
    contract = desk.contract
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

    from desktop.cli.join import check_invite

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


def _cli(*args):
    import subprocess

    from tests.procs import CLI, ROOT, env

    return subprocess.run(CLI + list(args), capture_output=True, text=True, cwd=ROOT, env=env(), timeout=120)


def test_the_commands_take_options_anywhere_and_print_no_escapes_or_tracebacks(tmp_path, host):
    proxy, book, desk = host
    hosted = tmp_path / "host-data"
    invite_id, secret = book.create(expires_in=600, uses=1)
    # revoking a leaked invite in a hurry: --data-dir after the action works too
    done = _cli("host", "revoke", "--data-dir", str(hosted), invite_id)
    assert done.returncode == 0 and invite_id in done.stdout, done.stderr
    assert book.entries()[invite_id].revoked
    assert _cli("host", "--data-dir", str(hosted), "revoke", "nope-nope").returncode == 2
    # a code whose expiry is past any calendar, and one whose name would clear the joiner's terminal
    far = _cli("join", "--check", invite(expires=10**30).code())
    assert far.returncode == 1 and "not a date" in far.stdout and "Traceback" not in far.stderr, far.stderr
    loud = invite(rpc=proxy.url, join=proxy.url + "/join", contract=desk.contract,
                  name="\x1b[2J\x1b]0;owned\x07lab").code()
    checked = _cli("join", "--check", loud)
    assert "\x1b" not in checked.stdout + checked.stderr and "lab" in checked.stdout
    # a join the host refuses leaves no new data dir behind
    fresh = tmp_path / "never-made" / "data"
    refused = _cli("join", invite(rpc=proxy.url, join=proxy.url + "/join", contract=desk.contract, id=invite_id,
                                  secret=secret).code(), "--data-dir", str(fresh))
    assert refused.returncode == 2 and "revoked" in refused.stderr, refused.stderr
    assert not (tmp_path / "never-made").exists()
