"""The hosted swarm's chain proxy before a real anvil: peers read and send signed transactions;
admin methods, unsigned sends, garbage, oversized bodies and floods are refused."""

import asyncio
import json
import threading
import urllib.error
import urllib.request

import pytest

from desktop.services.rpc_proxy import MAX_BATCH, MAX_BODY, RpcProxy
from tests.chain_fixtures import anvil, dev_accounts, w3  # noqa: F401


class Running:
    """The proxy on its own event loop thread, as the host's services run it."""

    def __init__(self, upstream: str, **kw):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.proxy = asyncio.run_coroutine_threadsafe(RpcProxy(upstream, **kw).start(), self.loop).result(10)

    def close(self):
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def proxy(anvil):  # noqa: F811
    running = Running(anvil.rpc_url)
    yield running.proxy
    running.close()


def post(url: str, body: bytes, content_type="application/json"):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def call(url: str, method: str, params=None, req_id=1):
    return post(url, json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params or []}).encode())


def test_peers_read_and_send_signed_transactions(proxy, dev_accounts):  # noqa: F811
    from eth_account import Account
    from web3 import Web3

    chain = Web3(Web3.HTTPProvider(proxy.url))
    assert chain.eth.chain_id == 31337
    sender, key = dev_accounts[1]
    receiver = Account.create().address
    tx = {"to": receiver, "value": 12345, "gas": 21000, "gasPrice": chain.eth.gas_price, "chainId": 31337,
          "nonce": chain.eth.get_transaction_count(sender)}
    signed = Account.sign_transaction(tx, key)
    receipt = chain.eth.wait_for_transaction_receipt(chain.eth.send_raw_transaction(signed.raw_transaction), 30)
    assert receipt.status == 1
    assert chain.eth.get_balance(receiver) == 12345


@pytest.mark.parametrize("method,params", [
    ("anvil_setBalance", ["0x" + "11" * 20, "0xffffffffffffffff"]),
    ("evm_mine", []), ("evm_setNextBlockTimestamp", [1]), ("hardhat_setBalance", ["0x" + "11" * 20, "0x1"]),
    ("debug_traceTransaction", ["0x" + "00" * 32]), ("personal_unlockAccount", ["0x" + "11" * 20, "", 0]),
    ("anvil_impersonateAccount", ["0x" + "11" * 20]),
])
def test_admin_methods_are_refused(proxy, w3, method, params):  # noqa: F811
    before = w3.eth.get_balance("0x" + "11" * 20)
    status, reply = call(proxy.url, method, params, req_id=7)
    assert status == 200 and reply["id"] == 7
    assert reply["error"]["code"] == -32601 and "not available" in reply["error"]["message"]
    assert w3.eth.get_balance("0x" + "11" * 20) == before
    assert proxy.refused["method"] >= 1


def test_unsigned_send_is_refused_even_from_a_funded_anvil_account(proxy, w3, dev_accounts):  # noqa: F811
    sender = dev_accounts[2][0]
    before = w3.eth.get_balance(sender)
    status, reply = call(proxy.url, "eth_sendTransaction", [{"from": sender, "to": "0x" + "22" * 20, "value": "0x1"}])
    assert reply["error"]["code"] == -32601
    assert w3.eth.get_balance(sender) == before  # anvil would have sent it: it holds the dev keys


def test_a_batch_is_answered_request_by_request(proxy):
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
             {"jsonrpc": "2.0", "id": "two", "method": "anvil_setBalance", "params": []},
             {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber"},
             "not a request"]
    status, replies = post(proxy.url, json.dumps(batch).encode())
    assert status == 200 and len(replies) == 4
    assert replies[0] == {"jsonrpc": "2.0", "id": 1, "result": "0x7a69"}
    assert replies[1]["id"] == "two" and replies[1]["error"]["code"] == -32601
    assert replies[2]["id"] == 3 and replies[2]["result"].startswith("0x")
    assert replies[3]["error"]["code"] == -32600


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[]", b"null", b"[" * 100000, b'{"method": 5}',
                                  b'{"method": "eth_call", "params": 5}', b'{"id": true, "method": "eth_call"}'])
def test_garbage_gets_an_error_never_a_crash(proxy, body):
    status, reply = post(proxy.url, body)
    assert status in (200, 400)
    replies = reply if isinstance(reply, list) else [reply]
    assert all("error" in r for r in replies)
    assert call(proxy.url, "eth_chainId")[1]["result"] == "0x7a69"  # still serving


def test_oversized_bodies_and_batches_are_refused(proxy):
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": ["x" * (MAX_BODY + 10)]}).encode()
    assert post(proxy.url, big)[0] == 413
    many = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(MAX_BATCH + 1)]
    status, reply = post(proxy.url, json.dumps(many).encode())
    assert status == 400 and "batch" in reply["error"]["message"]


def test_a_flood_is_rate_limited_per_client(anvil):  # noqa: F811
    running = Running(anvil.rpc_url, rate_per_s=5, burst=10)
    try:
        url = running.proxy.url
        statuses = [call(url, "eth_chainId")[0] for _ in range(30)]
        assert statuses[:10] == [200] * 10
        assert 429 in statuses
        assert running.proxy.refused["rate"] >= 15
    finally:
        running.close()


def test_the_chain_down_is_an_error_reply(anvil):  # noqa: F811
    running = Running("http://127.0.0.1:9")  # nothing listens there
    try:
        status, reply = call(running.proxy.url, "eth_chainId")
        assert status == 200 and reply["error"]["message"] == "the chain did not answer"
    finally:
        running.close()


LOOP = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: an endless loop, for as long as the gas lasts
DEAD = "0x000000000000000000000000000000000000dEaD"


def test_a_call_cannot_make_the_chain_loop_for_minutes(proxy, w3, dev_accounts):  # noqa: F811
    """State and block overrides are refused; a loop already on chain runs out of the capped gas
    in well under a second, however much gas the caller names; the chain answers throughout."""
    import time

    from desktop.chain.deploy import send_signed

    for method in ("eth_call", "eth_estimateGas"):
        status, reply = call(proxy.url, method, [{"to": DEAD, "gas": "0xffffffffffff"}, "latest", {DEAD: {"code": LOOP}}])
        assert reply["error"]["code"] == -32602 and "overrides" in reply["error"]["message"]
        status, reply = call(proxy.url, method, [{"to": DEAD}, "latest", None, {"gasLimit": "0xffffffffffff"}])
        assert reply["error"]["code"] == -32602
        status, reply = call(proxy.url, method, [{"to": DEAD, "gas": "lots"}])
        assert reply["error"]["code"] == -32602 and "quantity" in reply["error"]["message"]
    # a looping contract deployed by a funded peer (init code returns the 4-byte loop as runtime code)
    sender, key = dev_accounts[3]
    init = "0x63" + LOOP[2:] + "600052" + "6004601cf3"
    receipt = send_signed(w3, key, {"data": init, "gas": 100_000, "gasPrice": w3.eth.gas_price, "chainId": 31337,
                                    "nonce": w3.eth.get_transaction_count(sender)})
    looping = receipt["contractAddress"]
    assert w3.eth.get_code(looping).hex().removeprefix("0x") == LOOP[2:]
    for method in ("eth_call", "eth_estimateGas"):
        started = time.monotonic()
        status, reply = call(proxy.url, method, [{"to": looping, "gas": "0xffffffffffff"}, "latest"])
        assert "error" in reply and time.monotonic() - started < 5.0, reply
    started = time.monotonic()
    status, reply = call(proxy.url, "eth_blockNumber")
    assert "result" in reply and time.monotonic() - started < 2.0
    # an ordinary view still works through the capped gas
    from web3 import Web3

    from desktop.chain.deploy import coordinator_at, deploy_coordinator

    coordinator = coordinator_at(Web3(Web3.HTTPProvider(proxy.url)), deploy_coordinator(w3, dev_accounts[0][1]))
    assert coordinator.functions.currentRound().call() == 0
    assert coordinator.functions.winnerLeaderboard(0, 100).call() == [[], []]
