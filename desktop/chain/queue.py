"""Chain submissions that survive outages and restarts: never lost, never doubled.

The node keeps training while the RPC or the login server is down; what it would have submitted
waits here, in one JSON file rewritten atomically (temp file + fsync + rename), so a crash leaves
either the old or the new queue, never half of one.

- Each item has a stable id (kind + round + stage + peer): enqueuing the same id again, even after
  it was sent, is a no-op (sent ids are remembered).
- ``flush()`` sends in order. The "already" reverts (RewardAlreadySubmitted, WinnerAlreadyVoted,
  PeerIdAlreadyRegistered) count as done: that is how a submission whose reply was lost (sent, then
  crash or timeout before we recorded it) is confirmed instead of doubled.
- ``InvalidRoundNumber`` (a round the chain has not reached, e.g. a chain that was started anew)
  keeps the item and moves on: it is sent once the chain gets there.
- Any other revert drops the item with its reason.
- Transport trouble (unreachable, 5xx, bad token, not logged in) stops the flush and keeps the item.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import ChainError, CoordinatorClient

log = logging.getLogger(__name__)

KINDS = ("register", "reward", "winners")
ALREADY_DONE = frozenset({"RewardAlreadySubmitted", "WinnerAlreadyVoted", "PeerIdAlreadyRegistered"})
NOT_YET = frozenset({"InvalidRoundNumber"})
HISTORY_LIMIT = 2000  # finished ids remembered; older ones are still deduplicated by the contract
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FlushResult:
    sent: int = 0
    already: int = 0
    failed: int = 0   # dropped for good (a revert other than "already"); reasons in history()
    pending: int = 0  # still queued after this flush
    error: ChainError | None = None  # what stopped the flush early, if anything


def submission_id(kind: str, payload: dict[str, Any]) -> str:
    """The stable id of a submission; the contract allows one of each per id."""
    if kind == "register":
        return f"register:{payload['peer_id']}"
    if kind == "reward":
        return f"reward:{int(payload['round'])}:{int(payload['stage'])}:{payload['peer_id']}"
    if kind == "winners":
        return f"winners:{int(payload['round'])}:{payload['peer_id']}"
    raise ValueError(f"unknown submission kind {kind!r}; expected one of {KINDS}")


def _normalise(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Check and copy the payload, so what is stored is exactly what will be sent."""
    peer = str(payload["peer_id"])
    if kind == "register":
        return {"peer_id": peer}
    if kind == "reward":
        reward = payload["reward"]
        if not isinstance(reward, int) or isinstance(reward, bool):
            raise TypeError(f"reward must be the on-chain int (reward_to_chain), got {reward!r}")
        return {"round": int(payload["round"]), "stage": int(payload["stage"]),
                "reward": reward, "peer_id": peer}
    if kind == "winners":
        winners = [str(w) for w in payload["winners"]]
        if not winners:
            raise ValueError("a winners vote needs at least one winner")
        return {"round": int(payload["round"]), "winners": winners, "peer_id": peer}
    raise ValueError(f"unknown submission kind {kind!r}; expected one of {KINDS}")


class SubmissionQueue:
    """A persistent FIFO of submissions for one peer process. Thread-safe."""

    def __init__(self, path: Path, client: CoordinatorClient | None) -> None:
        self.path = Path(path)
        self.client = client
        self._lock = threading.RLock()        # guards the in-memory state and the file
        self._flush_lock = threading.Lock()   # one flush at a time: an item is never in flight twice
        self._items: list[dict[str, Any]] = []
        self._done: dict[str, dict[str, Any]] = {}
        self._load()

    # ---------------------------------------------------------------- persistence

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # Atomic writes make this unlikely; keep the bad file for a human instead of crashing.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error("submission queue %s unreadable (%s); moved to %s", self.path, exc, aside)
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            return
        self._items = list(data.get("items", []))
        self._done = dict(data.get("done", {}))

    def _save(self) -> None:
        if len(self._done) > HISTORY_LIMIT:  # dicts keep insertion order: drop the oldest
            for key in list(self._done)[: len(self._done) - HISTORY_LIMIT]:
                del self._done[key]
        data = {"version": FORMAT_VERSION, "items": self._items, "done": self._done}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ---------------------------------------------------------------- queueing

    def enqueue(self, kind: str, payload: dict[str, Any]) -> str:
        """Queue a submission; returns its id. A second enqueue of the same id changes nothing."""
        clean = _normalise(kind, payload)
        item_id = submission_id(kind, clean)
        with self._lock:
            if item_id in self._done or any(i["id"] == item_id for i in self._items):
                return item_id
            self._items.append({"id": item_id, "kind": kind, "payload": clean,
                                "enqueued_at": time.time(), "attempts": 0, "last_error": None})
            self._save()
        return item_id

    def enqueue_register(self, peer_id: str) -> str:
        return self.enqueue("register", {"peer_id": peer_id})

    def enqueue_reward(self, round_number: int, stage: int, reward: int, peer_id: str) -> str:
        return self.enqueue("reward", {"round": round_number, "stage": stage, "reward": reward,
                                       "peer_id": peer_id})

    def enqueue_winners(self, round_number: int, winners: list[str], peer_id: str) -> str:
        return self.enqueue("winners", {"round": round_number, "winners": winners,
                                        "peer_id": peer_id})

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._items))  # a deep copy the caller may keep

    def history(self) -> dict[str, dict[str, Any]]:
        """Finished ids: ``{id: {status: sent|already|dropped, hash?, reason?, at}}``."""
        with self._lock:
            return json.loads(json.dumps(self._done))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # ---------------------------------------------------------------- sending

    def _send(self, item: dict[str, Any]) -> str:
        p, client = item["payload"], self.client
        if item["kind"] == "register":
            return client.register_peer(p["peer_id"], attempts=1)
        if item["kind"] == "reward":
            return client.submit_reward(p["round"], p["stage"], p["reward"], p["peer_id"], attempts=1)
        return client.submit_winners(p["round"], p["winners"], p["peer_id"], attempts=1)

    def _finish(self, item_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._items = [i for i in self._items if i["id"] != item_id]
            self._done[item_id] = {**record, "at": time.time()}
            self._save()

    def flush(self, max_items: int | None = None) -> FlushResult:
        """Send queued items in order, one attempt each; stop at the first transport failure."""
        if self.client is None:
            return FlushResult(pending=len(self))
        sent = already = failed = 0
        stopped: ChainError | None = None
        with self._flush_lock:
            with self._lock:
                batch = [dict(i) for i in self._items[: max_items if max_items is not None else None]]
            for item in batch:
                try:
                    tx = self._send(item)
                except ChainError as exc:
                    name = exc.revert
                    if name in ALREADY_DONE:
                        already += 1
                        self._finish(item["id"], {"status": "already", "reason": name})
                    elif name in NOT_YET:
                        self._note_attempt(item["id"], exc)  # kept: the chain will reach that round
                    elif name is not None or exc.kind == "bad_request":
                        failed += 1
                        log.warning("dropping %s: %s", item["id"], exc)
                        self._finish(item["id"], {"status": "dropped", "reason": exc.kind,
                                                  "message": exc.message[:500]})
                    else:
                        stopped = exc
                        self._note_attempt(item["id"], exc)
                        break
                    continue
                if tx == "already":  # register_peer folds PeerIdAlreadyRegistered into this
                    already += 1
                    self._finish(item["id"], {"status": "already", "reason": "PeerIdAlreadyRegistered"})
                else:
                    sent += 1
                    self._finish(item["id"], {"status": "sent", "hash": tx})
        return FlushResult(sent, already, failed, len(self), stopped)

    def _note_attempt(self, item_id: str, exc: ChainError) -> None:
        with self._lock:
            for i in self._items:
                if i["id"] == item_id:
                    i["attempts"] += 1
                    i["last_error"] = exc.kind
            self._save()
