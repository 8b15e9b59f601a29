"""Talk to a SwarmCoordinator: reads straight from the RPC (web3), writes through the login server.

This is the split rl-swarm uses: reads are free eth_calls anyone can make; writes come from the
user's account, which only the login server can sign for (a smart account with a session key on the
testnet, a local key on the local chain). Every failure becomes a :class:`ChainError` whose
``kind`` says what to do about it:

- ``unreachable``: RPC / login server down or timed out. Retried, then queue and try later.
- ``server``: 5xx, or an RPC that answers with an error. Retried.
- ``unauthorized``: wrong or missing bearer token (401/403).
- ``user_not_found`` / ``not_logged_in``: no account behind the org id (404) / no org id at all.
- ``revert:<Name>``: the contract refused (``revert:RewardAlreadySubmitted``...). Never retried.
- ``bad_request`` / ``bad_response``: a 400 without a revert name / an answer we cannot decode
  (e.g. no contract at the address).
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from .contract import abi, revert_name

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRIED_KINDS = frozenset({"unreachable", "server"})
INT256_MAX = 2**255 - 1
INT256_MIN = -(2**255)
_REVERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")


class ChainError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    @property
    def revert(self) -> str | None:
        """The contract's error name for a revert, else None."""
        return self.kind.split(":", 1)[1] if self.kind.startswith("revert:") else None

    @property
    def retryable(self) -> bool:
        return self.kind in RETRIED_KINDS


def reward_to_chain(x: float) -> int:
    """The on-chain reward (int256) for a summed float reward signal.

    One chain unit = one reward point, as rl-swarm submits (it passes ``int(signal)``), so our
    totals stay comparable with other peers on the public contract. We round to the nearest
    integer (halves away from zero) instead of truncating, so small signals are not always
    biased toward zero; the result is clamped to int256. NaN/inf are a bug upstream: ValueError.
    """
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"reward signal is not a finite number: {x!r}")
    rounded = int(math.floor(abs(x) + 0.5))
    value = rounded if x >= 0 else -rounded
    return max(INT256_MIN, min(INT256_MAX, value))


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the n-th wait is ``base_delay * 2**n``, at most ``max_delay``."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, retry_index: int) -> float:
        return min(self.base_delay * (2 ** retry_index), self.max_delay)


def classify_web3_error(exc: BaseException) -> ChainError:
    """Classify an exception raised by web3 / requests during a read."""
    # web3 and requests: this module is imported (for its types and the queue) by processes that never
    # talk to a chain, so they are loaded on the first read or write
    import requests
    from web3.exceptions import (BadFunctionCallOutput, ContractLogicError, InsufficientData,
                                 Web3RPCError)

    if isinstance(exc, ContractLogicError):
        name = revert_name(exc)
        return ChainError(f"revert:{name}" if name else "revert:unknown", str(exc))
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, socket.timeout,
                        ConnectionError)):
        return ChainError("unreachable", str(exc))
    if isinstance(exc, requests.HTTPError):
        return ChainError("server", str(exc))
    if isinstance(exc, Web3RPCError):
        name = revert_name(exc)
        return ChainError(f"revert:{name}", str(exc)) if name else ChainError("server", str(exc))
    if isinstance(exc, (BadFunctionCallOutput, InsufficientData, ValueError)):
        return ChainError("bad_response", str(exc))
    return ChainError("server", f"{type(exc).__name__}: {exc}")


class CoordinatorClient:
    """One coordinator contract, read over ``rpc_url`` and written through ``login_url``."""

    def __init__(self, rpc_url: str, contract_address: str, *, login_url: str,
                 api_token: str | None, org_id: str | None, timeout: float = 10,
                 retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.org_id = org_id
        self.timeout = timeout
        self.retry = retry
        self._sleep = sleep
        # The login server is always on this machine (ours, or rl-swarm's on localhost:3000): an
        # http_proxy from the environment must not catch it.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._connect(rpc_url, contract_address, login_url, api_token)

    def _connect(self, rpc_url: str, contract_address: str, login_url: str, api_token: str | None) -> None:
        """Point this client at a chain and a login server (again, when local services moved)."""
        from web3 import Web3  # as in classify_web3_error

        # web3's own retry loop would hide an outage behind ~5 silent retries: we retry ourselves.
        provider = Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": self.timeout},
                                     exception_retry_configuration=None)
        w3 = Web3(provider)
        # The validation middleware asks eth_chainId around every eth_call; it only checks
        # transactions, and we never send any from here: one round trip per read instead of three.
        try:
            w3.middleware_onion.remove("validation")
        except (ValueError, KeyError):
            pass
        address = Web3.to_checksum_address(contract_address)
        self.rpc_url, self.login_url, self.api_token = rpc_url, login_url.rstrip("/"), api_token
        self.w3, self.address = w3, address
        self.contract = w3.eth.contract(address=address, abi=abi())

    @classmethod
    def from_profile(cls, profile, *, org_id: str | None, api_token: str | None = None,
                     **kwargs) -> "CoordinatorClient":
        token = api_token if api_token is not None else profile.api_token()
        return cls(profile.rpc_url, profile.contract_address, login_url=profile.login_url,
                   api_token=token, org_id=org_id, **kwargs)

    # ---------------------------------------------------------------- retry

    def _retrying(self, op: Callable[[], T], what: str, attempts: int | None = None) -> T:
        tries = max(1, attempts if attempts is not None else self.retry.attempts)
        for i in range(tries):
            try:
                return op()
            except ChainError as exc:
                if not exc.retryable or i + 1 >= tries:
                    raise
                delay = self.retry.delay(i)
                log.info("%s failed (%s), retrying in %.1f s", what, exc.kind, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _read(self, fn: Callable[[], T], what: str, attempts: int | None = None) -> T:
        def once() -> T:
            try:
                return fn()
            except ChainError:
                raise
            except Exception as exc:  # noqa: BLE001 - every web3/requests failure is classified
                raise classify_web3_error(exc) from exc
        return self._retrying(once, what, attempts)

    # ---------------------------------------------------------------- reads

    def round_and_stage(self, *, attempts: int | None = None) -> tuple[int, int]:
        """``(currentRound, currentStage)`` as one JSON-RPC batch of two eth_calls: one HTTP
        request per poll, however many peers poll a public RPC."""
        def batch() -> tuple[int, int]:
            fns = self.contract.functions
            # web3 keeps the batch in a ContextVar: other threads' reads are not swept into it.
            with self.w3.batch_requests() as b:
                b.add(fns.currentRound())
                b.add(fns.currentStage())
                replies = b.execute()
            if not isinstance(replies, list) or len(replies) != 2:
                raise ChainError("server", f"batch answered {replies!r}")
            return int(replies[0]), int(replies[1])
        return self._read(batch, "round_and_stage", attempts)

    def current_round(self, *, attempts: int | None = None) -> int:
        return self._read(lambda: int(self.contract.functions.currentRound().call()),
                          "currentRound", attempts)

    def stage_count(self) -> int:
        return self._read(lambda: int(self.contract.functions.stageCount().call()), "stageCount")

    def bootnodes(self) -> list[str]:
        return self._read(lambda: list(self.contract.functions.getBootnodes().call()),
                          "getBootnodes")

    def total_rewards(self, peer_ids: Sequence[str]) -> dict[str, int]:
        ids = list(peer_ids)
        totals = self._read(lambda: self.contract.functions.getTotalRewards(ids).call(),
                            "getTotalRewards")
        return {p: int(t) for p, t in zip(ids, totals)}

    def total_wins(self, peer_id: str) -> int:
        return self._read(lambda: int(self.contract.functions.getTotalWins(peer_id).call()),
                          "getTotalWins")

    def winner_leaderboard(self, start: int = 0, end: int = 100) -> list[tuple[str, int]]:
        """``[(peer_id, wins), ...]``, most wins first, entries ``[start, end)``."""
        ids, counts = self._read(
            lambda: self.contract.functions.winnerLeaderboard(start, end).call(), "winnerLeaderboard")
        return [(p, int(c)) for p, c in zip(ids, counts)]

    def voter_leaderboard(self, start: int = 0, end: int = 100) -> list[tuple[str, int]]:
        """``[(peer_id, votes cast), ...]``, most votes first, entries ``[start, end)``."""
        ids, counts = self._read(
            lambda: self.contract.functions.voterLeaderboard(start, end).call(), "voterLeaderboard")
        return [(p, int(c)) for p, c in zip(ids, counts)]

    def eoa_of(self, peer_ids: Sequence[str]) -> dict[str, str | None]:
        """Each peer id's account, None where the peer id is not registered."""
        ids = list(peer_ids)
        eoas = self._read(lambda: self.contract.functions.getEoa(ids).call(), "getEoa")
        return {p: (None if int(e, 16) == 0 else e) for p, e in zip(ids, eoas)}

    def has_submitted(self, round_number: int, stage: int, account: str) -> bool:
        from web3 import Web3  # as in classify_web3_error

        who = Web3.to_checksum_address(account)
        return self._read(lambda: bool(self.contract.functions.hasSubmittedRoundStageReward(
            round_number, stage, who).call()), "hasSubmittedRoundStageReward")

    # ---------------------------------------------------------------- writes (login server)

    def _post_once(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self.org_id:
            raise ChainError("not_logged_in", "no org id: log in first")
        data = json.dumps({"orgId": self.org_id, **body}).encode()
        return self._http("POST", path, data)

    def _http(self, method: str, path: str, data: bytes | None = None) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_token:
            headers["Authorization"] = f"Bearer {self.api_token}"
        req = urllib.request.Request(self.login_url + path, data=data, headers=headers,
                                     method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, DNS, timeout
            reason = getattr(exc, "reason", exc)
            raise ChainError("unreachable", f"{self.login_url}: {reason}") from None
        text = raw.decode("utf-8", "replace")
        try:
            return json.loads(text)
        except ValueError:
            return text  # get-api-key-status answers plain text

    @staticmethod
    def _http_error(code: int, raw: bytes) -> ChainError:
        text = raw.decode("utf-8", "replace")[:2000]
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if code in (401, 403):
            return ChainError("unauthorized", error or text or f"HTTP {code}")
        if code == 404:
            return ChainError("user_not_found", error or text or "user not found")
        if code == 400:
            if isinstance(error, str) and _REVERT_NAME.match(error):
                return ChainError(f"revert:{error}", json.dumps(body.get("metaMessages", "")))
            return ChainError("bad_request", text or "HTTP 400")
        if code >= 500:
            return ChainError("server", error or text or f"HTTP {code}")
        return ChainError("bad_response", f"HTTP {code}: {text}")

    def _write(self, path: str, body: dict[str, Any], attempts: int | None) -> str:
        reply = self._retrying(lambda: self._post_once(path, body), path, attempts)
        if not isinstance(reply, dict) or "hash" not in reply:
            raise ChainError("bad_response", f"{path} answered {reply!r}")
        return str(reply["hash"])

    def register_peer(self, peer_id: str, *, attempts: int | None = None) -> str:
        """The transaction hash, or ``"already"`` when the peer id is registered already."""
        try:
            return self._write("/api/register-peer", {"peerId": peer_id}, attempts)
        except ChainError as exc:
            if exc.revert == "PeerIdAlreadyRegistered":
                return "already"
            raise

    def submit_reward(self, round_number: int, stage: int, reward: int, peer_id: str, *,
                      attempts: int | None = None) -> str:
        """``reward`` is the on-chain int: convert float signals with :func:`reward_to_chain`."""
        if not isinstance(reward, int) or isinstance(reward, bool):
            raise TypeError(f"reward must be an int (use reward_to_chain), got {reward!r}")
        body = {"roundNumber": int(round_number), "stageNumber": int(stage), "reward": reward,
                "peerId": peer_id}
        return self._write("/api/submit-reward", body, attempts)

    def submit_winners(self, round_number: int, winners: Sequence[str], peer_id: str, *,
                       attempts: int | None = None) -> str:
        body = {"roundNumber": int(round_number), "winners": list(winners), "peerId": peer_id}
        return self._write("/api/submit-winner", body, attempts)

    def add_bootnodes(self, addrs: Sequence[str]) -> str | None:
        """Local profile: put our DHT address on chain (the local login server's own route)."""
        reply = self._retrying(lambda: self._http("POST", "/api/add-bootnodes",
                                                  json.dumps({"addrs": list(addrs)}).encode()),
                               "/api/add-bootnodes")
        return reply.get("hash") if isinstance(reply, dict) else None

    def api_key_status(self) -> str:
        """``"activated"`` or ``"pending"`` (the login server's plain-text answer)."""
        if not self.org_id:
            raise ChainError("not_logged_in", "no org id: log in first")
        query = urllib.parse.urlencode({"orgId": self.org_id})
        reply = self._retrying(lambda: self._http("GET", f"/api/get-api-key-status?{query}"),
                               "get-api-key-status")
        return str(reply).strip()


class ChainRoundSource:
    """The chain as the swarm's clock (``SharedRoundSource``): an authority, so a peer that is
    ahead waits. ``current_round()`` never raises: a chain we cannot read is an unknown round
    (None), and ``SyncedRoundSource`` then plays on with its own count."""

    wait_when_ahead = True

    def __init__(self, client: CoordinatorClient, *, attempts: int = 1) -> None:
        self.client = client
        self.attempts = attempts  # the caller polls anyway; retrying here only delays training
        self.last_error: ChainError | None = None
        self.last_stage: int | None = None

    def current_round(self) -> int | None:
        try:
            round_number, self.last_stage = self.client.round_and_stage(attempts=self.attempts)
        except ChainError as exc:
            self.last_error = exc
            log.warning("chain round unknown: %s", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - the training loop must not die on a read
            self.last_error = ChainError("server", f"{type(exc).__name__}: {exc}")
            log.exception("chain round read failed")
            return None
        self.last_error = None
        return round_number

    def announce(self, round_number: int) -> None:
        """The chain keeps the clock; nothing to tell it."""
