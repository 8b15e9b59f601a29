"""What the dashboard shows, folded from real protocol events (no Qt needed)."""

from desktop.events import make
from desktop.node_status import MAX_PEERS, NodeStatus, StatusFile, read_status_file


def test_rounds_rewards_and_chain_submissions_are_folded_in():
    st = NodeStatus()
    seq = [make("node_started", peer_id="Qm1", name="a b c", model="tiny:tiny", device="cpu", round=3, role="solver"),
           make("chain_submitted", round=-1, sent=1, already=0, failed=0, pending=0, error=None),
           make("round_started", round=3, stage=0, problems=1),
           make("rollouts", round=3, own=2, received=2, peers=["QmA", "QmB"], rejected={}),
           make("rewards", round=3, mean=0.7, own=[1.2, 0.2], transplanted=[0.2, 0.2]),
           make("train_step", round=3, loss=0.05, seconds=0.1, skipped=False, samples=4, own_logp=-0.3,
                external_logp=None, external_share=0.0),
           make("round_finished", round=3, seconds=1.0, generate_s=0.5, judge_s=0.2, train_s=0.1, comm_s=0.2,
                reward_mean=0.7),
           make("chain_submitted", round=3, sent=1, already=1, failed=0, pending=1,
                error="unreachable: http://127.0.0.1:3000")]
    assert all(st.apply(e) for e in seq)
    assert (st.name, st.round, st.last_completed, st.peers_seen) == ("a b c", 3, 3, {"QmA", "QmB"})
    assert st.history == [{"round": 3, "reward_mean": 0.7, "loss": 0.05, "skill": None, "generate_s": 0.5, "judge_s": 0.2,
                           "train_s": 0.1, "comm_s": 0.2}]
    assert (st.submitted, st.pending) == (3, 1)
    assert "unreachable" in st.chain_error
    assert st.apply(make("checkpoint", round=3, path="/x", seconds=0.1)) is False
    snap = st.snapshot()
    snap.history.append({})
    assert len(st.history) == 1  # a snapshot never aliases the live lists


def test_the_local_swarm_table_reads_events_like_the_dashboard(tmp_path):
    import io

    from desktop.local.launcher import LocalSwarm

    out = io.StringIO()
    swarm = LocalSwarm(tmp_path, peers=1, rounds=1, proposer=True, out=out, chain=False)
    solver, proposer = swarm.peers
    for ev in (make("node_started", peer_id="Qm1", name="calm quick fox", model="tiny:tiny", device="cpu", round=0,
                    role="solver"),
               make("rewards", round=0, mean=0.25, own=[0.5, 0.0], transplanted=[0.2, 0.2, 0.2]),
               make("round_finished", round=0, seconds=1.0, generate_s=0.5, judge_s=0.2, train_s=0.1, comm_s=0.2,
                    reward_mean=0.25)):
        swarm._update(solver, ev)
    swarm._update(proposer, make("proposer", round=4, difficulty=2, published="x", feedback=3, mean_reward=0.5,
                                 rejected={}))
    assert (solver.status.transplanted, solver.status.last_reward, solver.state) == (
        3, 0.25, "waiting for the next round")
    assert proposer.state == "round 4: proposing at level 2"
    swarm._update(solver, make("node_stopped", reason="finished", round=0, exit_code=0))
    swarm._render()
    solver_row = next(line for line in out.getvalue().splitlines() if line.startswith("solver-0"))
    assert solver_row.split()[1:] == ["calm", "quick", "fox", "0", "+0.250", "0", "3", "finished"]


def test_pause_and_resume_show_on_the_status():
    st = NodeStatus()
    st.apply({"type": "paused", "round": 4, "reason": "battery", "when": "now", "detail": "on battery power"})
    assert (st.paused, st.state) == ("battery", "paused: on battery power")
    st.apply({"type": "resumed", "round": 4, "reason": "battery", "seconds": 30.0})
    assert st.paused is None and st.state == "resumed"
    st.apply({"type": "paused", "round": 5, "reason": "user", "when": "after-round", "detail": ""})
    st.apply({"type": "node_stopped", "reason": "sigterm", "round": 4, "exit_code": 0})
    assert st.paused is None  # a stopped node is not "paused"


def test_the_status_file_is_written_at_round_ends_and_read_back_bounded(tmp_path):
    path = tmp_path / "node-status.json"
    keep = StatusFile(path)
    keep(make("warning", message="before the node started"))
    keep(make("error", message="a refused start writes nothing"))
    assert not path.exists()
    keep(make("node_started", peer_id="Qm1", name="a b c", model="tiny:tiny", device="cpu", round=0, role="solver"))
    keep(make("round_started", round=0, stage=0, problems=1))
    keep(make("rollouts", round=0, own=2, received=2, peers=["QmA"], rejected={}))
    first = read_status_file(path)
    assert first["heard"] == {} and first["state"] == "waiting for a round"  # not rewritten mid-round
    keep(make("round_finished", round=0, seconds=1.0, generate_s=0.5, judge_s=0.2, train_s=0.1, comm_s=0.2,
              reward_mean=0.5))
    done = read_status_file(path)
    assert done["round"] == 0 and set(done["heard"]) == {"QmA"} and done["total_reward"] == 0.5
    keep(make("node_stopped", reason="finished", round=0, exit_code=0))
    assert read_status_file(path)["state"] == "stopped"

    for junk in (b"", b"[]", b"{\"peer_id\": 5}", b"\xff" * 10, b" " * (2 * 1024 * 1024)):
        path.write_bytes(junk)
        assert read_status_file(path) is None
    path.write_text('{"peer_id": "Qm1", "heard": {"QmA": {"round": 1}, "7": 3, "QmB": {}}}')
    assert set(read_status_file(path)["heard"]) == {"QmA", "QmB"}
    many = {f"Qm{i}": {"round": 1} for i in range(MAX_PEERS * 2)}
    path.write_text('{"peer_id": "Qm1", "heard": %s}' % __import__("json").dumps(many))
    assert len(read_status_file(path)["heard"]) == MAX_PEERS
