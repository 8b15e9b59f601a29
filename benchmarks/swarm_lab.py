"""A swarm without the DHT, for sweeps: the product's own peers, exchanging through memory.

Each peer is a process running the node exactly as `rl-swarm node` builds it
(``desktop.node.main._build_node``: model, trainer, judge, problem stream, held-out set, SAPO
choice, the off-policy handling) with one part swapped: its ``comms`` is a ``BoardComms`` on a
shared in-memory board instead of the hivemind DHT. The board keeps the exchange's rules: a
record is encoded and decoded by ``desktop.swarm.records`` (validated as a stranger's), each
peer's round is handed out once, and every peer waits for all the others' records of its round (as
``swarm.expected_peers`` does). Same identities, problem streams and sampling seeds for the same
(seed, peer index) in every configuration, so configurations are compared pair by pair.

    from swarm_lab import run_swarm
    events = run_swarm(work_dir, peers=4, rounds=40, seed=1, overrides={...})   # one event list per peer

`benchmarks/sapo.py --lab` uses it; without --lab that benchmark runs real `rl-swarm node --swarm`
processes over a real DHT.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class BoardComms:
    """The Communication protocol over a shared dict {peer id: latest record bytes}."""

    shares = True

    def __init__(self, board, peer_id: str, model: str, peers: int, timeout: float = 900.0) -> None:
        self.board, self.peer_id, self.model, self.peers, self.timeout = board, peer_id, model, peers, timeout
        self.peers_seen: set[str] = set()
        self._handed_out: dict[str, int] = {}

    def publish(self, round_number: int, stage: int, own) -> bool:
        from desktop.swarm.records import encode_rollouts, fit_items

        self.board[self.peer_id] = encode_rollouts(self.peer_id, round_number, stage, self.model, fit_items(own))
        return True

    def gather(self, round_number: int, stage: int):
        from collections import Counter

        from desktop.swarm.records import RecordError, decode_rollouts
        from desktop.swarm.types import Gathered, PeerRollouts

        deadline = time.monotonic() + self.timeout
        while True:
            records, refused = {}, Counter()
            for peer, data in dict(self.board).items():
                if peer == self.peer_id:
                    continue
                try:
                    records[peer] = decode_rollouts(data, expected_round=round_number, round_window=2,
                                                    expected_peer_id=peer)
                except RecordError as exc:
                    refused[exc.reason] += 1
            fresh = {p: r for p, r in records.items() if r.round >= round_number}
            if len(fresh) >= self.peers - 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        out = []
        for peer, record in sorted(records.items()):
            self.peers_seen.add(peer)
            if self._handed_out.get(peer, -1) >= record.round:
                continue
            self._handed_out[peer] = record.round
            out += [PeerRollouts(peer_id=peer, round=record.round, ref=i.ref, batch_id=i.batch_id,
                                 completions=list(i.completions), rewards=list(i.rewards), model=record.model,
                                 stopped=list(i.stopped), tokens=i.tokens, logps=i.logps) for i in record.items]
        return Gathered(out, dict(refused))

    def close(self) -> None:
        pass


ABLATIONS = {
    # to measure what each part of the off-policy handling is worth, parts of it can be taken out
    "no-share-cap": "external tokens weigh their token count's share of a step, uncapped",
    "text-only": "peers' completions re-tokenised from their text, as before records carried tokens",
    "no-stopped": "with text-only: a completion cut at the publisher's limit may re-tokenise shorter and be "
                  "taken for one that stopped (the re-tokenising bug)",
}


def _ablate(node, ablations: tuple[str, ...]) -> None:
    if "no-share-cap" in ablations:
        node.external_share = None
    if "text-only" in ablations:
        node._same_tokens = lambda rollouts: False
    if "no-stopped" in ablations:
        build = node._external_group

        def forgetful(rollouts, problem):
            rollouts.stopped = []
            return build(rollouts, problem)
        node._external_group = forgetful


def _peer(index: int, work: str, identity: str, config_text: str, rounds: int, board, peers: int,
          ablations: tuple[str, ...] = ()) -> None:
    import torch

    from desktop.config import load_config
    from desktop.events import EventSink
    from desktop.identity import load_or_create_identity
    from desktop.node.main import _build_node
    from desktop.node.stop import StopControl
    from desktop.utils.paths import AppPaths

    torch.set_num_threads(1)
    data = Path(work) / f"peer-{index}"
    data.mkdir(parents=True, exist_ok=True)
    (data / "lab.yaml").write_text(config_text)
    config = load_config(data / "lab.yaml")
    config.swarm.enabled = False  # no DHT: the board below is the swarm
    config.chain.enabled = False
    paths = AppPaths.default(data)
    paths.ensure()
    identity, _ = load_or_create_identity(identity)
    with open(data / "events.jsonl", "w", encoding="utf-8") as out:
        sink = EventSink(out)
        node, conns, _ = _build_node(config, paths, identity, sink, StopControl(), False)
        node.peers.comms = BoardComms(board, identity.peer_id, node.model_name[:256], peers)
        _ablate(node, ablations)
        sink.emit("node_started", peer_id=identity.peer_id, name=f"peer-{index}", model=node.model_name, device="cpu",
                  round=0, role="solver")
        for r in range(rounds):
            node.play_round(r)
        node.judges.shutdown(wait=False, cancel_futures=True)


def identities(work: Path, peers: int) -> list[Path]:
    """One swarm.pem per peer index, made once and reused by every configuration in ``work``."""
    from desktop.identity import load_or_create_identity

    paths = [work / "identities" / f"peer-{i}.pem" for i in range(peers)]
    for p in paths:
        load_or_create_identity(p)
    return paths


def run_swarm(work: Path, *, peers: int, rounds: int, config_text: str, identity_files: list[Path],
              ablations: tuple[str, ...] = ()) -> list[list[dict]]:
    """Play ``rounds`` rounds with ``peers`` peers; each peer's events, in order."""
    ctx = mp.get_context("spawn")
    work = Path(work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with ctx.Manager() as manager:
        board = manager.dict()
        procs = [ctx.Process(target=_peer, args=(i, str(work), str(identity_files[i]), config_text, rounds, board, peers,
                                                     tuple(ablations)))
                 for i in range(peers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        failed = [i for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"lab peers {failed} failed: see {work}/peer-N")
    out = []
    for i in range(peers):
        lines = (work / f"peer-{i}" / "events.jsonl").read_text(encoding="utf-8").splitlines()
        out.append([json.loads(line) for line in lines if line.startswith("{")])
    return out
