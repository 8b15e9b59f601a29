"""The ``/api/*`` routes rl-swarm's node calls, with strict validation of every field.

Replies follow the rl-swarm login server: 200 ``{hash}``; 400 ``{error: <revert name>, metaMessages}``
for contract reverts; 404 ``{error: "user not found"}``; 500 otherwise. Field errors are 400
``{error: "bad request", detail}``. All handlers need the bearer token (checked by the middleware).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from aiohttp import web

from .accounts import AccountLocked, AccountStore, InvalidEmail, UnknownAccount
from .chain_writer import TransactionError, ChainWriter, Reverted

log = logging.getLogger("desktop.services.api")

MAX_WINNERS = 16
PEER_ID_MAX = 128
# base58btc: no 0, O, I or l. Real peer ids are "Qm..." (RSA) or "12D3KooW..." (ed25519).
_PEER_ID = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{1,%d}$" % PEER_ID_MAX)
UINT256_MAX = 2**256 - 1
INT256_MIN, INT256_MAX = -(2**255), 2**255 - 1

STORE = web.AppKey("store", AccountStore)
WRITER = web.AppKey("writer", ChainWriter)
MANAGER_KEY = web.AppKey("manager_key", str)  # local profile only: the bootnode manager's key
MAX_BOOTNODES = 8
MAX_KEPT_BOOTNODES = 16
MAX_MADDR_CHARS = 256


class UserNotFound(Exception):
    """Mapped to 404 ``{error: "user not found"}`` by the server's middleware."""


class BadRequest(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def json_error(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")  # ambiguous: which value would the chain see?
    return dict(pairs)


async def read_json(request: web.Request) -> dict:
    """The body as a JSON object; 400 for anything else (413 comes from aiohttp's size limit)."""
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _int(body: dict, name: str, low: int, high: int) -> int:
    value = body.get(name)
    # bool is an int subclass in Python; JSON true must not become round 1.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"{name} must be an integer in [{low}, {high}]")
    return value


def peer_id_field(value: Any, name: str = "peerId") -> str:
    if not isinstance(value, str) or not _PEER_ID.match(value):
        raise BadRequest(f"{name} must be a base58 peer id of at most {PEER_ID_MAX} characters")
    return value


def _org_id(body: dict) -> str:
    value = body.get("orgId")
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise BadRequest("orgId must be a non-empty string")
    return value


async def _account_key(request: web.Request, org_id: str):
    store = request.app[STORE]
    try:
        account = await asyncio.to_thread(store.get, org_id)
        key = await asyncio.to_thread(store.private_key, org_id)
    except UnknownAccount:
        raise UserNotFound(org_id) from None
    return account, key


async def _transact(request: web.Request, org_id: str, function: str, *args: Any,
                    on_revert=None) -> web.Response:
    try:
        account, key = await _account_key(request, org_id)
    except AccountLocked:
        log.warning("account %s cannot be unlocked: its secret is missing", org_id)
        return json_error(500, "account locked")
    try:
        tx_hash = await request.app[WRITER].transact(key, function, *args)
    except Reverted as exc:
        if on_revert is not None:
            await on_revert(account, exc)
        log.info("%s for %s reverted: %s", function, org_id, exc.name)
        return json_error(400, exc.name, metaMessages=exc.meta_messages())
    except TransactionError as exc:
        log.warning("%s for %s failed: %s", function, org_id, exc)
        return json_error(500, str(exc))
    log.info("%s for %s: %s", function, org_id, tx_hash)
    return web.json_response({"hash": tx_hash})


async def register_peer(request: web.Request) -> web.Response:
    body = await read_json(request)
    org_id, peer_id = _org_id(body), peer_id_field(body.get("peerId"))
    store, writer = request.app[STORE], request.app[WRITER]

    async def link_if_ours(account, exc: Reverted) -> None:
        # A restarted node registers again: the 400 is normal, but the page should list the peer.
        if exc.name == "PeerIdAlreadyRegistered":
            try:
                if (await writer.owner_of(peer_id)).lower() == account.address.lower():
                    await asyncio.to_thread(store.link_peer, org_id, peer_id)
            except Exception as err:  # the reply is the revert either way
                log.debug("owner lookup failed: %s", type(err).__name__)

    reply = await _transact(request, org_id, "registerPeer", peer_id, on_revert=link_if_ours)
    if reply.status == 200:
        await asyncio.to_thread(store.link_peer, org_id, peer_id)
    return reply


async def submit_reward(request: web.Request) -> web.Response:
    body = await read_json(request)
    org_id = _org_id(body)
    args = (_int(body, "roundNumber", 0, UINT256_MAX), _int(body, "stageNumber", 0, UINT256_MAX),
            _int(body, "reward", INT256_MIN, INT256_MAX), peer_id_field(body.get("peerId")))
    return await _transact(request, org_id, "submitReward", *args)


async def submit_winner(request: web.Request) -> web.Response:
    body = await read_json(request)
    org_id = _org_id(body)
    round_number = _int(body, "roundNumber", 0, UINT256_MAX)
    winners = body.get("winners")
    if not isinstance(winners, list) or len(winners) > MAX_WINNERS:
        raise BadRequest(f"winners must be a list of at most {MAX_WINNERS} peer ids")
    winners = [peer_id_field(w, "winners[]") for w in winners]
    return await _transact(request, org_id, "submitWinners", round_number, winners,
                           peer_id_field(body.get("peerId")))


async def api_key_status(request: web.Request) -> web.Response:
    org_id = request.query.get("orgId", "")
    try:
        await asyncio.to_thread(request.app[STORE].get, org_id)
    except UnknownAccount:
        return json_error(404, "user not found")
    # Keys are local and usable at once: there is no pending grant as with a remote session key.
    return web.Response(text="activated", content_type="text/plain")


async def session_info(store: AccountStore) -> dict | None:
    """The signed-in account's public info (never a key, never the token)."""
    account = await asyncio.to_thread(store.current)
    if account is None:
        return None
    peers = await asyncio.to_thread(store.peers, account.org_id)
    return {**account.public(), "peers": peers}


async def user_data(request: web.Request) -> web.Response:
    info = await session_info(request.app[STORE])
    return web.json_response(info) if info else json_error(404, "not signed in")


async def logout(request: web.Request) -> web.Response:
    signed_out = await asyncio.to_thread(request.app[STORE].sign_out)
    return web.json_response({"signedOut": signed_out})


async def add_bootnodes(request: web.Request) -> web.Response:
    """Local profile: the first local peer puts its DHT address on chain for the others.

    A peer that restarts listens on a new port: its addresses from earlier runs are replaced (the
    new ones are added first, so the list never lacks the peer), and the list keeps at most
    ``MAX_KEPT_BOOTNODES`` entries, newest last. Not part of the public login API (there the
    bootnode manager is the swarm's operator)."""
    key = request.app.get(MANAGER_KEY)
    if not key:
        return json_error(404, "not available")
    body = await read_json(request)
    addrs = body.get("addrs")
    if (not isinstance(addrs, list) or not 1 <= len(addrs) <= MAX_BOOTNODES
            or not all(_is_maddr(a) for a in addrs)):
        raise BadRequest(f"addrs must be 1 to {MAX_BOOTNODES} multiaddrs ending in /p2p/<peer id>")
    writer = request.app[WRITER]
    addrs = list(dict.fromkeys(addrs))
    owners = {_peer_of(a) for a in addrs}
    try:
        known = await writer.bootnodes()
        new = [a for a in addrs if a not in known]
        tx_hash = await writer.transact(key, "addBootnodes", new) if new else None
        listed = known + new
        stale = [i for i, a in enumerate(listed) if _peer_of(a) in owners and a not in addrs]
        keep = [i for i in range(len(listed)) if i not in stale]
        stale += keep[:max(0, len(keep) - MAX_KEPT_BOOTNODES)]  # the oldest beyond the cap
        for index in sorted(stale, reverse=True):  # from the end: lower indices stay valid
            await writer.transact(key, "removeBootnode", index)
    except Reverted as exc:
        return json_error(400, exc.name, metaMessages=exc.meta_messages())
    except TransactionError as exc:
        return json_error(500, str(exc))
    return web.json_response({"hash": tx_hash, "added": len(new), "removed": len(stale)})


def _peer_of(maddr: str) -> str:
    return maddr.rsplit("/p2p/", 1)[-1]


def _is_maddr(value: Any) -> bool:
    return (isinstance(value, str) and len(value) <= MAX_MADDR_CHARS and value.startswith("/")
            and "/p2p/" in value and value.isprintable() and " " not in value)


async def local_account(request: web.Request) -> web.Response:
    """Local profile, headless: sign in (or unlock) the account of an email without the page,
    so `rl-swarm swarm` can give each local peer its own account."""
    if not request.app.get(MANAGER_KEY):
        return json_error(404, "not available")
    body = await read_json(request)
    try:
        account, created = await asyncio.to_thread(request.app[STORE].sign_in, body.get("email"))
    except InvalidEmail as exc:
        raise BadRequest(str(exc)) from None
    await request.app[WRITER].ensure_funded(account.address)
    return web.json_response({"orgId": account.org_id, "address": account.address, "created": created})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/add-bootnodes", add_bootnodes)
    app.router.add_post("/api/local-account", local_account)
    app.router.add_post("/api/register-peer", register_peer)
    app.router.add_post("/api/submit-reward", submit_reward)
    app.router.add_post("/api/submit-winner", submit_winner)
    app.router.add_get("/api/get-api-key-status", api_key_status)
    app.router.add_get("/api/user-data", user_data)
    app.router.add_post("/api/logout", logout)
