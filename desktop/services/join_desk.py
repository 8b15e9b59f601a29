"""The host's join endpoint (``POST /join`` beside the chain proxy): an invite's secret buys one
funding of the joiner's own account on the private chain, nothing else.

The joiner creates its key itself and sends only its address; the desk checks the invite
(``desktop.invites.InviteBook``: known, not revoked, not expired, uses left) and then has the
host's funder send it gas money. Without a valid secret there are no funds, whatever is asked.
"""

from __future__ import annotations

import json
import logging
from typing import Awaitable, Callable

from aiohttp import web

from desktop.invites import InviteBook, InviteError

log = logging.getLogger("desktop.services.join")

MAX_BODY = 4096


class JoinDesk:
    def __init__(self, book: InviteBook, fund: Callable[[str], Awaitable[bool]], *, chain_id: int,
                 contract: str) -> None:
        self.book = book
        self.fund = fund
        self.chain_id = chain_id
        self.contract = contract
        self.refused = 0
        self.funded: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.content.read(MAX_BODY + 1)
        try:
            body = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_BODY else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            self.refused += 1
            return web.json_response({"error": "bad join request"}, status=400)
        address = body.get("address")
        try:
            self.book.redeem(body.get("invite"), body.get("secret"), address)
        except InviteError as exc:
            self.refused += 1
            log.info("join refused: %s", exc)
            return web.json_response({"error": str(exc)}, status=403)
        try:
            sent = await self.fund(address)
        except Exception as exc:  # the chain is down: the invite use stays, asking again is free
            log.warning("could not fund %s: %s", address, exc)
            return web.json_response({"error": "the host could not fund your account just now; try again"},
                                     status=502)
        self.funded.append(address)
        log.info("joined: %s (%s)", address, "funded" if sent else "already funded")
        return web.json_response({"funded": bool(sent), "chain_id": self.chain_id, "contract": self.contract})
