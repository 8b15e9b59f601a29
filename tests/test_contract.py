"""SwarmCoordinator: the artifact matches its source and the 0.4.2 interface; behaviour on a real anvil."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.chain import contract
from desktop.chain.contract import revert_name
from tests.chain_fixtures import unique_peer_id

REPO = Path(__file__).resolve().parents[1]

# From the facts file (SwarmCoordinator 0.4.2): signature -> (outputs, stateMutability).
FUNCTIONS = {
    "registerPeer(string)": ((), "nonpayable"),
    "submitReward(uint256,uint256,int256,string)": ((), "nonpayable"),
    "submitWinners(uint256,string[],string)": ((), "nonpayable"),
    "currentRound()": (("uint256",), "view"),
    "currentStage()": (("uint256",), "view"),
    "stageCount()": (("uint256",), "pure"),
    "getBootnodes()": (("string[]",), "view"),
    "getBootnodesCount()": (("uint256",), "view"),
    "addBootnodes(string[])": ((), "nonpayable"),
    "removeBootnode(uint256)": ((), "nonpayable"),
    "clearBootnodes()": ((), "nonpayable"),
    "updateStageAndRound()": (("uint256", "uint256"), "nonpayable"),
    "getEoa(string[])": (("address[]",), "view"),
    "getPeerId(address[])": (("string[][]",), "view"),
    "getTotalRewards(string[])": (("int256[]",), "view"),
    "getTotalWins(string)": (("uint256",), "view"),
    "getPeerVoteCount(uint256,string)": (("uint256",), "view"),
    "getVoterVoteCount(string)": (("uint256",), "view"),
    "getVoterVotes(uint256,string)": (("string[]",), "view"),
    "getRoundStageReward(uint256,uint256,address[])": (("int256[]",), "view"),
    "hasSubmittedRoundStageReward(uint256,uint256,address)": (("bool",), "view"),
    "voterLeaderboard(uint256,uint256)": (("string[]", "uint256[]"), "view"),
    "winnerLeaderboard(uint256,uint256)": (("string[]", "uint256[]"), "view"),
    "uniqueVoters()": (("uint256",), "view"),
    "uniqueVotedPeers()": (("uint256",), "view"),
}
EVENTS = {
    "PeerRegistered(address,string)",
    "RewardSubmitted(address,uint256,uint256,int256,string)",
    "CumulativeRewardsUpdated(address,string,int256)",
    "WinnerSubmitted(address,string,uint256,string[])",
    "RoundAdvanced(uint256)",
    "StageAdvanced(uint256,uint256)",
    "BootnodesAdded(address,uint256)",
}
ERRORS = {"PeerIdAlreadyRegistered", "RewardAlreadySubmitted", "InvalidRoundNumber",
          "InvalidStageNumber", "WinnerAlreadyVoted", "InvalidVote", "InvalidVoterPeerId"}


def _sig(item):
    return f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"


# ---------------------------------------------------------------- artifact (no chain)

def test_artifact_matches_source_hash():
    art = contract.load_artifact()
    assert {"abi", "bytecode", "solc_version", "source_sha256"} <= art.keys()
    assert art["solc_version"].startswith("0.8.37+")
    assert art["source_sha256"] == contract.source_sha256(), "artifact is stale: recompile"
    assert contract.bytecode().startswith("0x6080")
    assert contract.abi() == art["abi"]


def test_abi_has_the_public_interface():
    items = contract.abi()
    functions = {_sig(f): f for f in items if f["type"] == "function"}
    for sig, (outputs, mutability) in FUNCTIONS.items():
        assert sig in functions, sig
        assert tuple(o["type"] for o in functions[sig]["outputs"]) == outputs, sig
        assert functions[sig]["stateMutability"] == mutability, sig
    events = {_sig(e): e for e in items if e["type"] == "event"}
    assert EVENTS <= events.keys()
    assert not any(i["indexed"] for sig in EVENTS for i in events[sig]["inputs"])
    errors = {e["name"]: e for e in items if e["type"] == "error"}
    assert ERRORS <= errors.keys()
    assert all(not errors[n]["inputs"] for n in ERRORS)
    assert {"OnlyOwner", "OnlyStageManager", "OnlyBootnodeManager"} <= errors.keys()


@pytest.mark.skipif(not (REPO / "node_modules" / "solc").is_dir() or not shutil.which("node"),
                    reason="recompiling needs node and `npm ci`")
@pytest.mark.slow
def test_recompile_gives_the_committed_artifact():
    out = subprocess.run(["node", "resources/contracts/compile.js", "--check"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout


def test_contract_module_does_not_import_web3():
    code = "import sys, desktop.chain.contract as c; c.abi(); assert 'web3' not in sys.modules, 'web3 loaded'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_revert_name_accepts_raw_forms():
    selectors = contract.error_selectors()
    by_name = {v: k for k, v in selectors.items()}
    sel = by_name["InvalidVote"]
    assert revert_name(sel) == "InvalidVote"
    assert revert_name(bytes.fromhex(sel[2:])) == "InvalidVote"
    assert revert_name({"code": 3, "message": "execution reverted", "data": sel}) == "InvalidVote"
    assert revert_name(RuntimeError(f"execution reverted: custom error {sel}")) == "InvalidVote"
    assert revert_name("0x08c379a0" + "00" * 64) is None  # Error(string) is not a custom error
    assert revert_name(None) is None
    assert revert_name(ValueError("boom")) is None


# ---------------------------------------------------------------- on anvil

def send(w3, fn, sender):
    """Transact from an unlocked dev account and return the mined receipt."""
    receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}), poll_latency=0.01)
    assert receipt["status"] == 1
    return receipt


def reverts(fn, sender) -> str | None:
    from web3.exceptions import ContractCustomError

    with pytest.raises(ContractCustomError) as info:
        fn.transact({"from": sender})
    return revert_name(info.value)


def events(c, receipt, name):
    from web3.logs import DISCARD

    return [dict(e["args"]) for e in getattr(c.events, name)().process_receipt(receipt, errors=DISCARD)]


@pytest.fixture
def acct(dev_accounts):
    return [a for a, _ in dev_accounts]


@pytest.fixture
def c(fresh_coordinator):
    return fresh_coordinator


def test_initial_state_and_roles(c, acct):
    f = c.functions
    assert (f.owner().call(), f.stageManager().call(), f.bootnodeManager().call()) == (acct[0],) * 3
    assert (f.currentRound().call(), f.currentStage().call(), f.stageCount().call()) == (0, 0, 1)
    assert (f.uniqueVoters().call(), f.uniqueVotedPeers().call(), f.getBootnodesCount().call()) == (0, 0, 0)


def test_register_peer_links_eoa(w3, c, acct):
    p1, p2, p3 = unique_peer_id(), unique_peer_id(), unique_peer_id()
    receipt = send(w3, c.functions.registerPeer(p1), acct[1])
    assert events(c, receipt, "PeerRegistered") == [{"eoa": acct[1], "peerId": p1}]
    send(w3, c.functions.registerPeer(p2), acct[1])  # one EOA, several peer ids
    send(w3, c.functions.registerPeer(p3), acct[2])
    zero = "0x" + "00" * 20
    assert c.functions.getEoa([p1, p3, "QmUnknown"]).call() == [acct[1], acct[2], zero]
    assert c.functions.getPeerId([acct[1], acct[2], acct[3]]).call() == [[p1, p2], [p3], []]


def test_register_taken_peer_id_reverts(w3, c, acct):
    peer = unique_peer_id()
    send(w3, c.functions.registerPeer(peer), acct[1])
    assert reverts(c.functions.registerPeer(peer), acct[2]) == "PeerIdAlreadyRegistered"
    assert reverts(c.functions.registerPeer(peer), acct[1]) == "PeerIdAlreadyRegistered"


def test_update_stage_and_round(w3, c, acct):
    assert c.functions.updateStageAndRound().call({"from": acct[0]}) == [1, 0]
    receipt = send(w3, c.functions.updateStageAndRound(), acct[0])
    assert events(c, receipt, "RoundAdvanced") == [{"newRoundNumber": 1}]
    assert events(c, receipt, "StageAdvanced") == [{"roundNumber": 1, "newStage": 0}]
    send(w3, c.functions.updateStageAndRound(), acct[0])
    assert (c.functions.currentRound().call(), c.functions.currentStage().call()) == (2, 0)


def test_stage_manager_role(w3, c, acct):
    assert reverts(c.functions.updateStageAndRound(), acct[1]) == "OnlyStageManager"
    send(w3, c.functions.setStageManager(acct[1]), acct[0])
    assert c.functions.stageManager().call() == acct[1]
    send(w3, c.functions.updateStageAndRound(), acct[1])
    assert reverts(c.functions.updateStageAndRound(), acct[0]) == "OnlyStageManager"


def test_only_owner_sets_managers(c, acct):
    assert reverts(c.functions.setStageManager(acct[1]), acct[1]) == "OnlyOwner"
    assert reverts(c.functions.setBootnodeManager(acct[1]), acct[1]) == "OnlyOwner"


def test_add_and_get_bootnodes(w3, c, acct):
    nodes = [f"/ip4/127.0.0.1/tcp/{4000 + i}/p2p/{unique_peer_id()}" for i in range(3)]
    receipt = send(w3, c.functions.addBootnodes(nodes[:2]), acct[0])
    assert events(c, receipt, "BootnodesAdded") == [{"manager": acct[0], "count": 2}]
    send(w3, c.functions.addBootnodes(nodes[2:]), acct[0])
    assert c.functions.getBootnodes().call() == nodes
    assert c.functions.getBootnodesCount().call() == 3


def test_remove_bootnode_keeps_order(w3, c, acct):
    send(w3, c.functions.addBootnodes(["a", "b", "c", "d"]), acct[0])
    send(w3, c.functions.removeBootnode(1), acct[0])
    assert c.functions.getBootnodes().call() == ["a", "c", "d"]
    send(w3, c.functions.removeBootnode(2), acct[0])
    assert c.functions.getBootnodes().call() == ["a", "c"]
    assert reverts(c.functions.removeBootnode(2), acct[0]) == "InvalidBootnodeIndex"


def test_clear_bootnodes(w3, c, acct):
    send(w3, c.functions.addBootnodes(["a", "b"]), acct[0])
    send(w3, c.functions.clearBootnodes(), acct[0])
    assert c.functions.getBootnodes().call() == []
    assert c.functions.getBootnodesCount().call() == 0


def test_bootnode_manager_role(w3, c, acct):
    for fn in (c.functions.addBootnodes(["x"]), c.functions.removeBootnode(0), c.functions.clearBootnodes()):
        assert reverts(fn, acct[1]) == "OnlyBootnodeManager"
    send(w3, c.functions.setBootnodeManager(acct[1]), acct[0])
    send(w3, c.functions.addBootnodes(["x"]), acct[1])
    assert reverts(c.functions.clearBootnodes(), acct[0]) == "OnlyBootnodeManager"


def test_submit_reward_records_and_accumulates(w3, c, acct):
    peer = unique_peer_id()
    send(w3, c.functions.registerPeer(peer), acct[1])
    receipt = send(w3, c.functions.submitReward(0, 0, 5, peer), acct[1])
    assert events(c, receipt, "RewardSubmitted") == [
        {"account": acct[1], "roundNumber": 0, "stageNumber": 0, "reward": 5, "peerId": peer}]
    assert events(c, receipt, "CumulativeRewardsUpdated") == [
        {"account": acct[1], "peerId": peer, "totalRewards": 5}]
    send(w3, c.functions.updateStageAndRound(), acct[0])
    send(w3, c.functions.submitReward(1, 0, -8, peer), acct[1])  # rewards may be negative
    assert c.functions.getTotalRewards([peer, "QmUnknown"]).call() == [-3, 0]
    assert c.functions.getRoundStageReward(0, 0, [acct[1], acct[2]]).call() == [5, 0]
    assert c.functions.getRoundStageReward(1, 0, [acct[1]]).call() == [-8]
    assert c.functions.hasSubmittedRoundStageReward(1, 0, acct[1]).call() is True
    assert c.functions.hasSubmittedRoundStageReward(1, 0, acct[2]).call() is False


def test_submit_reward_for_a_past_round(w3, c, acct):
    peer = unique_peer_id()
    send(w3, c.functions.registerPeer(peer), acct[1])
    send(w3, c.functions.updateStageAndRound(), acct[0])
    send(w3, c.functions.submitReward(0, 0, 1, peer), acct[1])
    assert c.functions.hasSubmittedRoundStageReward(0, 0, acct[1]).call()


def test_submit_reward_twice_reverts(w3, c, acct):
    peer, other = unique_peer_id(), unique_peer_id()
    send(w3, c.functions.registerPeer(peer), acct[1])
    send(w3, c.functions.registerPeer(other), acct[1])
    send(w3, c.functions.submitReward(0, 0, 1, peer), acct[1])
    assert reverts(c.functions.submitReward(0, 0, 1, peer), acct[1]) == "RewardAlreadySubmitted"
    # One submission per (round, stage, account), whichever of its peer ids it names.
    assert reverts(c.functions.submitReward(0, 0, 1, other), acct[1]) == "RewardAlreadySubmitted"


def test_submit_reward_future_round_reverts(w3, c, acct):
    peer = unique_peer_id()
    send(w3, c.functions.registerPeer(peer), acct[1])
    assert reverts(c.functions.submitReward(1, 0, 1, peer), acct[1]) == "InvalidRoundNumber"


def test_submit_reward_bad_stage_reverts(w3, c, acct):
    peer = unique_peer_id()
    send(w3, c.functions.registerPeer(peer), acct[1])
    assert reverts(c.functions.submitReward(0, 1, 1, peer), acct[1]) == "InvalidStageNumber"


def test_submit_reward_for_a_peer_not_owned_reverts(w3, c, acct):
    peer = unique_peer_id()
    send(w3, c.functions.registerPeer(peer), acct[1])
    assert reverts(c.functions.submitReward(0, 0, 1, peer), acct[2]) == "InvalidVoterPeerId"
    assert reverts(c.functions.submitReward(0, 0, 1, "QmNobody"), acct[2]) == "InvalidVoterPeerId"


def test_submit_winners_counts_votes(w3, c, acct):
    voter, win1, win2 = unique_peer_id(), unique_peer_id(), unique_peer_id()
    for peer, who in ((voter, 1), (win1, 2), (win2, 3)):
        send(w3, c.functions.registerPeer(peer), acct[who])
    receipt = send(w3, c.functions.submitWinners(0, [win1, win2], voter), acct[1])
    assert events(c, receipt, "WinnerSubmitted") == [
        {"account": acct[1], "peerId": voter, "roundNumber": 0, "winners": [win1, win2]}]
    f = c.functions
    assert f.getVoterVotes(0, voter).call() == [win1, win2]
    assert f.getVoterVotes(1, voter).call() == []
    assert (f.getPeerVoteCount(0, win1).call(), f.getPeerVoteCount(1, win1).call()) == (1, 0)
    assert (f.getTotalWins(win1).call(), f.getTotalWins(voter).call()) == (1, 0)
    assert (f.getVoterVoteCount(voter).call(), f.getVoterVoteCount(win1).call()) == (1, 0)
    assert (f.uniqueVoters().call(), f.uniqueVotedPeers().call()) == (1, 2)


def test_submit_winners_twice_reverts(w3, c, acct):
    voter = unique_peer_id()
    send(w3, c.functions.registerPeer(voter), acct[1])
    send(w3, c.functions.submitWinners(0, [voter], voter), acct[1])  # voting for oneself is allowed
    assert reverts(c.functions.submitWinners(0, [voter], voter), acct[1]) == "WinnerAlreadyVoted"
    send(w3, c.functions.updateStageAndRound(), acct[0])
    send(w3, c.functions.submitWinners(1, [voter], voter), acct[1])
    assert c.functions.getVoterVoteCount(voter).call() == 2
    assert c.functions.getTotalWins(voter).call() == 2


def test_submit_winners_invalid_vote_reverts(w3, c, acct):
    voter, winner = unique_peer_id(), unique_peer_id()
    send(w3, c.functions.registerPeer(voter), acct[1])
    send(w3, c.functions.registerPeer(winner), acct[2])
    for winners in ([], ["QmNotRegistered"], [winner, "QmNotRegistered"], [winner, winner]):
        assert reverts(c.functions.submitWinners(0, winners, voter), acct[1]) == "InvalidVote", winners


def test_submit_winners_invalid_voter_reverts(w3, c, acct):
    voter = unique_peer_id()
    send(w3, c.functions.registerPeer(voter), acct[1])
    assert reverts(c.functions.submitWinners(0, [voter], voter), acct[2]) == "InvalidVoterPeerId"
    assert reverts(c.functions.submitWinners(0, [voter], "QmNobody"), acct[2]) == "InvalidVoterPeerId"


def test_submit_winners_future_round_reverts(w3, c, acct):
    voter = unique_peer_id()
    send(w3, c.functions.registerPeer(voter), acct[1])
    assert reverts(c.functions.submitWinners(1, [voter], voter), acct[1]) == "InvalidRoundNumber"


def test_revert_name_from_a_call(c, acct):
    from web3.exceptions import ContractCustomError

    with pytest.raises(ContractCustomError) as info:
        c.functions.submitWinners(0, [], "QmNobody").call({"from": acct[1]})
    assert revert_name(info.value) == "InvalidVoterPeerId"


def test_leaderboards_sorted_and_sliced(w3, c, acct):
    a, b, cc, d = (unique_peer_id() for _ in range(4))
    for peer in (a, b, cc, d):
        send(w3, c.functions.registerPeer(peer), acct[0])
    for voter, winners in ((a, [b]), (b, [b, cc]), (cc, [cc]), (d, [b])):
        send(w3, c.functions.submitWinners(0, winners, voter), acct[0])
    send(w3, c.functions.updateStageAndRound(), acct[0])
    for voter, winners in ((cc, [d]), (d, [cc])):
        send(w3, c.functions.submitWinners(1, winners, voter), acct[0])
    f = c.functions
    # Ties keep the order in which the count was reached: b hit 3 before c did.
    assert f.winnerLeaderboard(0, 100).call() == [[b, cc, d], [3, 3, 1]]
    assert f.voterLeaderboard(0, 4).call() == [[cc, d, a, b], [2, 2, 1, 1]]
    assert f.winnerLeaderboard(1, 100).call() == [[cc, d], [3, 1]]
    assert f.voterLeaderboard(1, 3).call() == [[d, a], [2, 1]]
    assert f.winnerLeaderboard(5, 10).call() == [[], []]
    assert f.voterLeaderboard(2, 1).call() == [[], []]
    assert (f.uniqueVoters().call(), f.uniqueVotedPeers().call()) == (4, 3)
    assert (f.getPeerVoteCount(0, b).call(), f.getPeerVoteCount(1, cc).call()) == (3, 1)

