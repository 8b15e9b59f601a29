"""CoordinatorClient, ChainRoundSource, profiles and the submission queue on a real anvil.

"Down" services are real closed ports (connection refused), not mocks. The login-server tests
start the services' own server in-process on 127.0.0.1 against the session's anvil.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from desktop.chain.client import (ChainError, ChainRoundSource, CoordinatorClient, RetryPolicy,
                                  reward_to_chain)
from desktop.chain.deploy import send_signed
from desktop.chain.profiles import (TESTNET, ChainProfile, ServicesFileError, local_profile,
                                    read_services_file, services_file, write_services_file)
from desktop.chain.queue import FlushResult, SubmissionQueue
from desktop.node.rounds import SyncedRoundSource, Ticket
from tests.chain_fixtures import unique_peer_id

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58_peer_id() -> str:
    """Like unique_peer_id() but valid base58 (the login server checks peer ids)."""
    n = int(unique_peer_id()[2:], 16)
    out = ""
    while n:
        n, r = divmod(n, 58)
        out += _B58[r]
    return "Qm" + out


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens once the socket is closed


def tx(w3, key, call):
    from eth_account import Account

    sender = Account.from_key(key).address
    return send_signed(w3, key, call.build_transaction(
        {"from": sender, "nonce": w3.eth.get_transaction_count(sender, "pending")}))


def reader(anvil, contract, **kw) -> CoordinatorClient:
    return CoordinatorClient(anvil.rpc_url, contract.address, login_url=closed_port_url(),
                             api_token=None, org_id=None, timeout=5, **kw)


# ---------------------------------------------------------------- pure functions

def test_reward_to_chain_rounds_to_nearest_point():
    assert reward_to_chain(0.0) == 0
    assert reward_to_chain(2.4) == 2
    assert reward_to_chain(2.5) == 3
    assert reward_to_chain(2.6) == 3
    assert reward_to_chain(-2.5) == -3
    assert reward_to_chain(-0.4) == 0
    assert reward_to_chain(1e90) == 2**255 - 1
    assert reward_to_chain(-1e90) == -(2**255)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            reward_to_chain(bad)


def test_retry_policy_doubles_up_to_max():
    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=1.5)
    assert [policy.delay(i) for i in range(4)] == [0.5, 1.0, 1.5, 1.5]


def test_profiles_and_services_file(tmp_path):
    assert TESTNET.chain_id == 685685
    assert TESTNET.login_url == "http://localhost:3000"
    assert TESTNET.contract_address == "0x7745a8FE4b8D2D2c3BB103F8dCae822746F35Da0"
    path = services_file(tmp_path)
    assert path == tmp_path / "chain" / "services.json"
    with pytest.raises(ServicesFileError, match="not found"):
        local_profile(path)
    token = tmp_path / "login" / "api_token"
    info = {"rpc_url": "http://127.0.0.1:8545", "contract": "0x" + "ab" * 20,
            "login_url": "http://127.0.0.1:3000", "api_token_file": token, "chain_id": "31337"}
    write_services_file(path, info)
    assert read_services_file(path)["chain_id"] == 31337
    assert not list(path.parent.glob("*.tmp"))
    profile = local_profile(path)
    assert isinstance(profile, ChainProfile)
    assert profile.name == "local"
    assert profile.api_token() is None  # token file not written yet
    token.parent.mkdir()
    token.write_text("s3cret-token\n")
    assert profile.api_token() == "s3cret-token"
    with pytest.raises(ServicesFileError, match="lacks"):
        write_services_file(path, {"rpc_url": "x"})
    path.write_text(json.dumps({"rpc_url": "x"}))
    with pytest.raises(ServicesFileError, match="lacks"):
        read_services_file(path)


# ---------------------------------------------------------------- reads on anvil

def test_round_and_stage_is_one_batched_http_request(anvil, w3, dev_accounts, fresh_coordinator):
    client = reader(anvil, fresh_coordinator)
    tx(w3, dev_accounts[0][1], fresh_coordinator.functions.updateStageAndRound())
    tx(w3, dev_accounts[0][1], fresh_coordinator.functions.updateStageAndRound())
    posts = []
    session = client.w3.provider._request_session_manager
    real_post = session.make_post_request

    def counting_post(uri, data, **kwargs):  # the real request still goes out
        posts.append(json.loads(data))
        return real_post(uri, data, **kwargs)

    session.make_post_request = counting_post
    assert client.round_and_stage() == (2, 0)
    assert len(posts) == 1, posts
    batch = posts[0]
    assert isinstance(batch, list)
    assert [r["method"] for r in batch] == ["eth_call", "eth_call"]
    posts.clear()
    assert client.current_round() == 2
    assert len(posts) == 1  # plain reads: one round trip too


def test_reads_bootnodes_rewards_and_leaderboards(anvil, w3, dev_accounts, fresh_coordinator):
    c, (a0, k0), (a1, k1), (a2, k2) = fresh_coordinator, *dev_accounts[:3]
    client = reader(anvil, c)
    assert client.stage_count() == 1
    assert client.bootnodes() == []
    addrs = ["/ip4/127.0.0.1/tcp/38331/p2p/QmBoot1", "/ip4/127.0.0.1/tcp/38332/p2p/QmBoot2"]
    tx(w3, k0, c.functions.addBootnodes(addrs))
    assert client.bootnodes() == addrs
    p1, p2, nobody = unique_peer_id(), unique_peer_id(), unique_peer_id()
    tx(w3, k1, c.functions.registerPeer(p1))
    tx(w3, k2, c.functions.registerPeer(p2))
    tx(w3, k1, c.functions.submitReward(0, 0, 7, p1))
    tx(w3, k2, c.functions.submitReward(0, 0, -3, p2))
    tx(w3, k1, c.functions.submitWinners(0, [p2], p1))
    tx(w3, k2, c.functions.submitWinners(0, [p2, p1], p2))
    assert client.total_rewards([p1, p2, nobody]) == {p1: 7, p2: -3, nobody: 0}
    assert client.total_wins(p2) == 2
    assert client.total_wins(p1) == 1
    assert client.winner_leaderboard(0, 10) == [(p2, 2), (p1, 1)]
    assert client.winner_leaderboard(1, 10) == [(p1, 1)]
    assert client.voter_leaderboard() == [(p1, 1), (p2, 1)]
    assert client.eoa_of([p1, nobody]) == {p1: a1, nobody: None}
    assert client.has_submitted(0, 0, a1)
    assert not client.has_submitted(0, 0, a0)


def test_no_contract_at_address_is_bad_response(anvil, dev_accounts):
    client = CoordinatorClient(anvil.rpc_url, dev_accounts[5][0], login_url=closed_port_url(),
                               api_token=None, org_id=None)
    with pytest.raises(ChainError) as info:
        client.round_and_stage()
    assert info.value.kind in ("bad_response", "server")  # an account answers empty bytes


# ---------------------------------------------------------------- the chain as round source

@pytest.mark.slow
def test_chain_round_source_behind_jumps_ahead_waits(anvil, w3, dev_accounts, fresh_coordinator):
    from desktop.services.round_keeper import RoundKeeper

    source = ChainRoundSource(reader(anvil, fresh_coordinator))
    assert source.wait_when_ahead is True
    keeper = RoundKeeper(w3, fresh_coordinator.address, dev_accounts[0][1], period=None,
                         advance_when_all_submitted=False)
    keeper.advance(), keeper.advance()
    joins, waits = [], []
    synced = SyncedRoundSource(source, backoff_start=0.05, backoff_max=0.2,
                               on_join=lambda cur, want: joins.append((cur, want)),
                               on_wait=lambda want, cur, d: waits.append((want, cur)))
    assert synced.next_round(None) == Ticket(2, confirmed=True)
    assert joins == [(2, 0)]  # behind: joins
    # Ahead (we finished 2, the chain is still at 2): waits until the keeper moves the clock.
    keeper.period = 0.4
    with keeper:
        assert synced.next_round(2) == Ticket(3, confirmed=True)
    assert waits
    assert all(w == (3, 2) for w in waits)
    source.announce(3)  # a no-op for an authority


def test_round_source_with_rpc_down_is_none_and_never_raises():
    client = CoordinatorClient(closed_port_url(), "0x" + "11" * 20, login_url=closed_port_url(),
                               api_token=None, org_id=None, timeout=2)
    source = ChainRoundSource(client)
    assert source.current_round() is None
    assert source.last_error.kind == "unreachable"
    # The node trains on instead of hanging, but claims no chain round: it keeps its last round's
    # number, unconfirmed (racing ahead with its own count made every submission invalid later).
    assert SyncedRoundSource(source, backoff_start=0.01).next_round(4) == Ticket(4, confirmed=False)


def test_unreachable_is_retried_with_backoff_then_raised():
    slept = []
    client = CoordinatorClient(closed_port_url(), "0x" + "11" * 20, login_url=closed_port_url(),
                               api_token="t", org_id="org", retry=RetryPolicy(4, 0.1, 0.25),
                               sleep=slept.append)
    with pytest.raises(ChainError) as info:
        client.bootnodes()
    assert info.value.kind == "unreachable"
    assert slept == [0.1, 0.2, 0.25]
    slept.clear()
    with pytest.raises(ChainError) as info:
        client.submit_reward(1, 0, 5, "QmPeer")
    assert info.value.kind == "unreachable"
    assert slept == [0.1, 0.2, 0.25]
    with pytest.raises(TypeError, match="reward_to_chain"):
        client.submit_reward(1, 0, 0.5, "QmPeer")
    no_login = CoordinatorClient(closed_port_url(), "0x" + "11" * 20, login_url=closed_port_url(),
                                 api_token="t", org_id=None)
    with pytest.raises(ChainError) as info:
        no_login.register_peer("QmPeer")
    assert info.value.kind == "not_logged_in"


# ---------------------------------------------------------------- queue while the login server is down

def down_client(anvil, contract) -> CoordinatorClient:
    return CoordinatorClient(anvil.rpc_url, contract.address, login_url=closed_port_url(),
                             api_token="t", org_id="org", retry=RetryPolicy(1, 0, 0))


def test_queue_keeps_submissions_on_disk_while_login_is_down(tmp_path, anvil, coordinator):
    path = tmp_path / "queue.json"
    queue = SubmissionQueue(path, down_client(anvil, coordinator))
    rid = queue.enqueue_reward(3, 0, 12, "QmA")
    wid = queue.enqueue_winners(3, ["QmB"], "QmA")
    assert rid == "reward:3:0:QmA"
    assert wid == "winners:3:QmA"
    assert queue.enqueue("reward", {"round": 3, "stage": 0, "reward": 99, "peer_id": "QmA"}) == rid
    assert len(queue) == 2  # same id again: a no-op, the first payload stands
    result = queue.flush()
    assert (result.sent, result.already, result.failed, result.pending) == (0, 0, 0, 2)
    assert result.error.kind == "unreachable"
    assert path.is_file()
    assert not list(tmp_path.glob("*.tmp"))
    again = SubmissionQueue(path, None)  # a restart: same items, same order, attempts recorded
    items = again.pending()
    assert [i["id"] for i in items] == [rid, wid]
    assert items[0]["payload"]["reward"] == 12
    assert items[0]["attempts"] == 1
    assert items[0]["last_error"] == "unreachable"
    assert items[1]["attempts"] == 0  # the flush stopped at the first transport failure
    assert again.flush() == FlushResult(pending=2)


def test_queue_validates_payloads(tmp_path):
    queue = SubmissionQueue(tmp_path / "q.json", None)
    with pytest.raises(TypeError, match="reward_to_chain"):
        queue.enqueue_reward(1, 0, 1.5, "QmA")
    with pytest.raises(ValueError, match="kind"):
        queue.enqueue("vote", {"peer_id": "QmA"})
    with pytest.raises(ValueError, match="winner"):
        queue.enqueue_winners(1, [], "QmA")
    assert len(queue) == 0
    assert not (tmp_path / "q.json").exists()


def test_queue_is_thread_safe(tmp_path, anvil, coordinator):
    queue = SubmissionQueue(tmp_path / "q.json", down_client(anvil, coordinator))

    def producer(n):
        for r in range(25):
            queue.enqueue_reward(r, 0, 1, f"Qm{n}")
            queue.enqueue_reward(r, 0, 1, f"Qm{n}")  # duplicates from the same thread too

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=lambda: [queue.flush() for _ in range(5)]))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(queue) == 100
    assert len(SubmissionQueue(tmp_path / "q.json", None)) == 100


def test_corrupt_queue_file_is_moved_aside(tmp_path):
    path = tmp_path / "q.json"
    path.write_text("{not json")
    queue = SubmissionQueue(path, None)
    assert len(queue) == 0
    assert list(tmp_path.glob("q.json.corrupt-*"))


# ---------------------------------------------------------------- through the real login server

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def login(tmp_path, anvil, dev_accounts, coordinator):
    """Start/stop the services' login server (account 5 pays gas) on a chosen port."""
    from desktop.services.login_server import LoginServer, ensure_api_token

    servers = []

    def start(port=0, rpc_url=None):
        server = LoginServer(tmp_path / "svc", rpc_url or anvil.rpc_url, coordinator.address,
                             port=port, funder_key=dev_accounts[5][1], use_keyring=False)
        servers.append(server.run_in_thread())
        return server

    from desktop.services.accounts import AccountStore

    start.data_dir = tmp_path / "svc"
    start.token = ensure_api_token(start.data_dir)  # the file a real node reads the token from
    start.store = AccountStore(start.data_dir, use_keyring=False)  # what the sign-in page does
    start.sign_in = lambda email: start.store.sign_in(email)[0]
    yield start
    for server in servers:
        server.stop_thread()


def api_client(anvil, coordinator, url, token, org_id, **kw) -> CoordinatorClient:
    kw.setdefault("retry", RetryPolicy(2, 0.01, 0.02))
    return CoordinatorClient(anvil.rpc_url, coordinator.address, login_url=url, api_token=token,
                             org_id=org_id, timeout=10, **kw)


def test_queued_submissions_are_sent_exactly_once_when_login_returns(tmp_path, anvil, coordinator, login):
    from desktop.chain.profiles import read_org_id

    port = free_port()  # nothing listens here yet: the login server is "down"
    user = login.sign_in("queue@example.com")
    assert read_org_id(login.store.user_data_file) == user.org_id
    peer = b58_peer_id()
    client = api_client(anvil, coordinator, f"http://127.0.0.1:{port}", login.token, user.org_id)
    path = tmp_path / "queue.json"
    queue = SubmissionQueue(path, client)
    queue.enqueue_register(peer)
    queue.enqueue_reward(0, 0, 12, peer)
    queue.enqueue_winners(0, [peer], peer)
    assert queue.flush().pending == 3
    totals = coordinator.functions.getTotalRewards([peer]).call
    assert totals() == [0]

    login(port=port)  # the server comes up where the client looks
    queue = SubmissionQueue(path, client)  # and the node restarted meanwhile
    result = queue.flush()
    assert (result.sent, result.already, result.failed, result.pending) == (3, 0, 0, 0)
    assert totals() == [12]
    assert coordinator.functions.hasSubmittedRoundStageReward(0, 0, user.address).call()
    assert coordinator.functions.getTotalWins(peer).call() == 1
    assert all(h["status"] == "sent" and h["hash"].startswith("0x") for h in queue.history().values())

    queue.enqueue_reward(0, 0, 12, peer)  # the node asks again: already sent, a no-op
    assert len(queue) == 0
    assert queue.flush() == FlushResult()
    restarted = SubmissionQueue(path, client)
    restarted.enqueue_winners(0, [peer], peer)
    assert len(restarted) == 0
    assert totals() == [12]
    assert coordinator.functions.getTotalWins(peer).call() == 1


def test_already_on_chain_counts_as_done(tmp_path, anvil, coordinator, login, monkeypatch):
    server = login()
    user = login.sign_in("already@example.com")
    client = api_client(anvil, coordinator, server.url, login.token, user.org_id)
    peer = b58_peer_id()
    assert client.register_peer(peer).startswith("0x")
    assert client.register_peer(peer) == "already"
    assert client.api_key_status() == "activated"
    # Sent directly, but the reply was "lost": the queued copies must not double anything.
    client.submit_reward(0, 0, 5, peer)
    client.submit_winners(0, [peer], peer)
    queue = SubmissionQueue(tmp_path / "q.json", client)
    queue.enqueue_register(peer)
    queue.enqueue_reward(0, 0, 5, peer)
    queue.enqueue_winners(0, [peer], peer)
    result = queue.flush()
    assert (result.sent, result.already, result.failed, result.pending) == (0, 3, 0, 0)
    assert {h["reason"] for h in queue.history().values()} == {
        "PeerIdAlreadyRegistered", "RewardAlreadySubmitted", "WinnerAlreadyVoted"}
    assert client.total_rewards([peer]) == {peer: 5}
    assert client.total_wins(peer) == 1
    monkeypatch.setenv("http_proxy", closed_port_url())  # the local login is never proxied
    assert client.api_key_status() == "activated"


def test_login_errors_map_to_kinds_and_queue_policy(tmp_path, anvil, coordinator, login):
    server = login()
    user = login.sign_in("errors@example.com")
    good = api_client(anvil, coordinator, server.url, login.token, user.org_id)
    peer = b58_peer_id()
    good.register_peer(peer)
    with pytest.raises(ChainError) as info:
        good.submit_reward(10**6, 0, 1, peer)
    assert info.value.kind == "revert:InvalidRoundNumber"
    assert not info.value.retryable
    with pytest.raises(ChainError) as info:
        good.submit_reward(0, 0, 1, "Qm0OIl-not-base58")
    assert info.value.kind == "bad_request"

    queue = SubmissionQueue(tmp_path / "q.json", good)
    queue.enqueue_reward(10**6, 0, 1, peer)  # a round the chain has not reached: kept, and skipped over
    queue.enqueue_reward(0, 0, 3, peer)
    queue.enqueue_reward(0, 0, 4, "Qm0OIl-not-base58")  # refused as a bad request: dropped
    result = queue.flush()
    assert (result.sent, result.failed, result.pending) == (1, 1, 1)
    assert queue.pending()[0]["id"] == f"reward:{10**6}:0:{peer}"
    assert queue.pending()[0]["last_error"] == "revert:InvalidRoundNumber"
    assert queue.history()["reward:0:0:Qm0OIl-not-base58"]["reason"] == "bad_request"

    for client, kind in (
        (api_client(anvil, coordinator, server.url, "wrong-token", user.org_id), "unauthorized"),
        (api_client(anvil, coordinator, server.url, login.token, "f" * 32), "user_not_found"),
    ):
        with pytest.raises(ChainError) as info:
            client.submit_winners(0, [peer], peer)
        assert info.value.kind == kind
        q = SubmissionQueue(tmp_path / f"{kind}.json", client)
        q.enqueue_winners(0, [peer], peer)
        assert q.flush().pending == 1
        assert q.pending()[0]["last_error"] == kind  # kept for later


def test_a_submission_ahead_of_the_chain_waits_until_the_chain_gets_there(tmp_path, anvil, dev_accounts,
                                                                         coordinator, login):
    from desktop.services.round_keeper import RoundKeeper

    server = login()
    user = login.sign_in("ahead@example.com")
    client = api_client(anvil, coordinator, server.url, login.token, user.org_id)
    peer = b58_peer_id()
    client.register_peer(peer)
    ahead = client.current_round() + 1
    queue = SubmissionQueue(tmp_path / "ahead.json", client)
    queue.enqueue_reward(ahead, 0, 2, peer)
    queue.enqueue_winners(ahead, [peer], peer)
    assert queue.flush().pending == 2  # nothing lost while the chain is behind
    RoundKeeper(anvil.rpc_url, coordinator.address, dev_accounts[0][1], period=None).advance()
    result = queue.flush()
    assert (result.sent, result.pending, result.failed) == (2, 0, 0)
    assert client.has_submitted(ahead, 0, user.address)


@pytest.mark.slow
def test_login_server_with_chain_down_is_a_retried_server_error(anvil, coordinator, login):
    server = login(rpc_url=closed_port_url())
    user = login.sign_in("down@example.com")
    slept = []
    client = api_client(anvil, coordinator, server.url, login.token, user.org_id,
                        retry=RetryPolicy(2, 0.01, 0.02), sleep=slept.append)
    with pytest.raises(ChainError) as info:
        client.submit_reward(0, 0, 1, b58_peer_id())
    assert info.value.kind == "server"
    assert info.value.retryable
    assert slept == [0.01]
