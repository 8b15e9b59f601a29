"""A local stage manager: moves the local coordinator's clock like the public swarm's.

On the testnet Gensyn's stage manager calls ``updateStageAndRound()``; on a local chain nobody
would, and every peer would wait forever. The keeper advances

- on a schedule: ``period`` seconds after the last advance (None: never on time alone), and/or
- early, once every registered account has submitted its reward for the current round and stage
  (``advance_when_all_submitted``): a small swarm does not sit idle until the period ends.

"Registered" means every account that ever emitted ``PeerRegistered`` (scanned incrementally with
``eth_getLogs``); an account that left keeps the early rule from firing, and the period is the
fallback. One account can own several peer ids, and the contract counts rewards per account.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from eth_account import Account
from web3 import Web3

from desktop.chain.client import ChainError, classify_web3_error
from desktop.chain.deploy import TransactionFailed, coordinator_at, send_signed

log = logging.getLogger(__name__)


class RoundKeeper:
    def __init__(self, w3: Web3 | str, contract_address: str, stage_manager_key: str, *,
                 period: float | None = 30.0, advance_when_all_submitted: bool = True,
                 poll: float = 1.0, on_advance: Callable[[int, int], None] | None = None,
                 timeout: float = 10.0) -> None:
        if isinstance(w3, str):
            w3 = Web3(Web3.HTTPProvider(w3, request_kwargs={"timeout": timeout},
                                        exception_retry_configuration=None))
        self.w3 = w3
        self.contract = coordinator_at(w3, contract_address)
        self._key = stage_manager_key
        self.account = Account.from_key(stage_manager_key).address
        self.period = period
        self.advance_when_all_submitted = advance_when_all_submitted
        self.poll = poll
        self.on_advance = on_advance
        self.timeout = timeout
        self.last_error: ChainError | None = None
        self.advances = 0
        self._eoas: list[str] = []          # registered accounts, in registration order
        self._next_block = 0                # first block not yet scanned for PeerRegistered
        self._lock = threading.Lock()       # one transaction at a time (nonces) and one log scan
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_advance = time.monotonic()

    # ---------------------------------------------------------------- chain

    def round_and_stage(self) -> tuple[int, int]:
        f = self.contract.functions
        return int(f.currentRound().call()), int(f.currentStage().call())

    def registered_accounts(self) -> list[str]:
        """Every account that registered a peer id, scanning only blocks not seen before."""
        with self._lock:
            head = self.w3.eth.block_number
            if head >= self._next_block:
                logs = self.contract.events.PeerRegistered.get_logs(from_block=self._next_block,
                                                                    to_block=head)
                for entry in logs:
                    eoa = Web3.to_checksum_address(entry["args"]["eoa"])
                    if eoa not in self._eoas:
                        self._eoas.append(eoa)
                self._next_block = head + 1
            return list(self._eoas)

    def all_submitted(self) -> bool:
        """True when at least one account is registered and all of them submitted a reward for
        the current round and stage."""
        eoas = self.registered_accounts()
        if not eoas:
            return False
        round_number, stage = self.round_and_stage()
        check = self.contract.functions.hasSubmittedRoundStageReward
        return all(check(round_number, stage, eoa).call() for eoa in eoas)

    def advance(self) -> tuple[int, int]:
        """Call ``updateStageAndRound()`` once; returns the new ``(round, stage)``.

        Raises ChainError: ``revert:OnlyStageManager`` when our key is not the stage manager,
        ``unreachable`` when the RPC is down.
        """
        with self._lock:
            try:
                tx = self.contract.functions.updateStageAndRound().build_transaction({
                    "from": self.account,
                    "nonce": self.w3.eth.get_transaction_count(self.account, "pending"),
                })
                send_signed(self.w3, self._key, tx, timeout=self.timeout)
                new = self.round_and_stage()
            except TransactionFailed as exc:
                raise ChainError("revert:unknown", str(exc)) from exc
            except ChainError:
                raise
            except Exception as exc:  # noqa: BLE001 - classify web3/requests failures once
                raise classify_web3_error(exc) from exc
            self._last_advance = time.monotonic()
            self.advances += 1
        log.info("advanced to round %d stage %d", *new)
        if self.on_advance:
            try:
                self.on_advance(*new)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the clock
                log.exception("on_advance callback failed")
        return new

    # ---------------------------------------------------------------- schedule

    def due(self) -> str | None:
        """Why an advance is due now (``"period"`` / ``"all_submitted"``), or None."""
        if self.period is not None and time.monotonic() - self._last_advance >= self.period:
            return "period"
        if self.advance_when_all_submitted and self.all_submitted():
            return "all_submitted"
        return None

    def step(self) -> tuple[int, int] | None:
        """One check of the schedule: advance if due. Errors are recorded, never raised."""
        try:
            reason = self.due()
            if reason is None:
                return None
            log.debug("advancing: %s", reason)
            result = self.advance()
        except ChainError as exc:
            self._record(exc)
            return None
        except Exception as exc:  # noqa: BLE001 - the RPC may be down for a while; keep polling
            self._record(classify_web3_error(exc))
            return None
        self.last_error = None
        return result

    def _record(self, exc: ChainError) -> None:
        if self.last_error is None or self.last_error.kind != exc.kind:
            log.warning("round keeper: %s", exc)
        self.last_error = exc

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.step()

    def start(self) -> "RoundKeeper":
        if self._thread and self._thread.is_alive():
            return self
        self._stop.clear()
        self._last_advance = time.monotonic()  # the first period counts from start
        self._thread = threading.Thread(target=self._run, name="round-keeper", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout if timeout is not None else self.poll + self.timeout + 5)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "RoundKeeper":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
