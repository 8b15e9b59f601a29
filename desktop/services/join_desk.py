"""The host's join endpoint, beside the chain proxy: an invite's secret buys one funding of the
joiner's own account on the private chain, nothing else.

Two steps, both needing the invite's secret:

    POST /join/challenge {invite, secret}                           -> {nonce, chain_id, contract}
    POST /join {invite, secret, address, nonce, signature}           -> {funded, chain_id, contract}

The signature is the address's own key over ``invites.join_message`` (EIP-191): the desk funds
only an address whose key the joiner holds, for this swarm and this one nonce (single use, a few
minutes). The invite's use and the address are recorded in one locked step before any funding
(``InviteBook.redeem``): however many joins arrive at once, an invite funds at most its number of
uses, and an address at most once per invite, ever. A failed funding gives the use back.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import OrderedDict
from typing import Awaitable, Callable

from aiohttp import web
from eth_account import Account
from eth_account.messages import encode_defunct

from desktop.services.invites import InviteBook, InviteError, join_message

log = logging.getLogger("desktop.services.join")

MAX_BODY = 4096
NONCE_TTL_S = 300.0
MAX_NONCES = 1024  # outstanding challenges; only holders of a valid secret can ask for one


class JoinDesk:
    def __init__(self, book: InviteBook, fund: Callable[[str], Awaitable[bool]], *, chain_id: int,
                 contract: str, nonce_ttl: float = NONCE_TTL_S) -> None:
        self.book = book
        self.fund = fund
        self.chain_id = chain_id
        self.contract = contract
        self.nonce_ttl = nonce_ttl
        self.refused = 0
        self.funded: list[str] = []
        self._nonces: OrderedDict[str, tuple[str, float]] = OrderedDict()  # nonce -> (invite id, expiry)

    def _refuse(self, status: int, message: str) -> web.Response:
        self.refused += 1
        log.info("join refused: %s", message)
        return web.json_response({"error": message}, status=status)

    @staticmethod
    async def _body(request: web.Request) -> dict | None:
        raw = await request.content.read(MAX_BODY + 1)
        try:
            body = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_BODY else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            body = None
        return body if isinstance(body, dict) else None

    def _issue(self, invite_id: str) -> str:
        now = time.monotonic()
        while self._nonces and (len(self._nonces) >= MAX_NONCES or next(iter(self._nonces.values()))[1] <= now):
            self._nonces.popitem(last=False)  # oldest first: expired, or the table is full
        nonce = secrets.token_urlsafe(16)
        self._nonces[nonce] = (invite_id, now + self.nonce_ttl)
        return nonce

    def _spend(self, nonce, invite_id: str) -> bool:
        """A nonce this desk issued for this invite, unexpired; gone after this call either way."""
        issued = self._nonces.pop(nonce, None) if isinstance(nonce, str) else None
        return issued is not None and issued[0] == invite_id and issued[1] > time.monotonic()

    async def challenge(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return self._refuse(400, "bad join request")
        try:
            self.book.check(body.get("invite"), body.get("secret"))
        except InviteError as exc:
            return self._refuse(403, str(exc))
        return web.json_response({"nonce": self._issue(body["invite"]), "chain_id": self.chain_id,
                                  "contract": self.contract, "expires_in": self.nonce_ttl})

    async def handle(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return self._refuse(400, "bad join request")
        invite_id, address, signature = body.get("invite"), body.get("address"), body.get("signature")
        try:
            self.book.check(invite_id, body.get("secret"))
        except InviteError as exc:
            return self._refuse(403, str(exc))
        if not isinstance(signature, str) or not isinstance(address, str) or len(signature) > 200:
            return self._refuse(400, "a join must be signed by the joining account (update RL Swarm Desktop)")
        if not self._spend(body.get("nonce"), invite_id):
            return self._refuse(403, "this join's nonce is unknown or expired: start the join again")
        if not _signed_by(join_message(self.chain_id, self.contract, invite_id, body["nonce"], address),
                          signature, address):
            return self._refuse(403, "the join is not signed by the key of the address it names")
        try:
            first = self.book.redeem(invite_id, body.get("secret"), address)
        except InviteError as exc:
            return self._refuse(403, str(exc))
        if not first:
            log.info("join again by %s: already funded through this invite", address)
            return web.json_response({"funded": False, "already_joined": True, "chain_id": self.chain_id,
                                      "contract": self.contract})
        try:
            sent = await self.fund(address)
        except Exception as exc:  # the chain is down: the use goes back, asking again is free
            self.book.release(invite_id, address)
            log.warning("could not fund %s: %s", address, exc)
            return web.json_response({"error": "the host could not fund your account just now; try again"},
                                     status=502)
        self.funded.append(address)
        log.info("joined: %s (%s)", address, "funded" if sent else "already had funds")
        return web.json_response({"funded": bool(sent), "chain_id": self.chain_id, "contract": self.contract})


def _signed_by(message: str, signature: str, address: str) -> bool:
    try:
        return Account.recover_message(encode_defunct(text=message), signature=signature).lower() == address.lower()
    except Exception:  # malformed signature of any kind: not signed by anyone
        return False
