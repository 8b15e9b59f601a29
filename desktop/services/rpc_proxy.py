"""The chain as a hosted swarm shows it to other machines: a filtering JSON-RPC proxy before anvil.

Anvil stays on 127.0.0.1 and answers everything, including its admin methods (``anvil_setBalance``,
``evm_*``, ``hardhat_*``, ``debug_*``, ``personal_*``, unsigned ``eth_sendTransaction``), any of
which would let a peer mint itself rewards or rewrite the chain. The proxy forwards only what a
peer needs to read the coordinator and send its own signed transactions (``ALLOWED``) and answers
everything else with a JSON-RPC error, per request of a batch. Bounded on every axis: body size,
batch length, requests per client per second (a token bucket per IP), upstream time, and the work
one call may ask of the chain: ``eth_call`` / ``eth_estimateGas`` run with at most CALL_GAS_CAP
gas and without state or block overrides (anvil would otherwise run an injected endless loop for
as long as the gas lasts, minutes, and stall the chain for every peer). Garbage gets an error
reply, never a crash; each refusal is counted, not logged line by line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, ClientTimeout, web

log = logging.getLogger("desktop.services.rpc_proxy")

ALLOWED = frozenset({
    "eth_call", "eth_chainId", "eth_blockNumber", "eth_getTransactionCount", "eth_estimateGas",
    "eth_gasPrice", "eth_feeHistory", "eth_maxPriorityFeePerGas", "eth_sendRawTransaction",
    "eth_getTransactionReceipt", "eth_getTransactionByHash", "eth_getLogs", "eth_getBlockByNumber",
    "eth_getBlockByHash", "eth_getBalance", "eth_getCode", "eth_syncing", "net_version",
    "web3_clientVersion",
})
MAX_BODY = 128 * 1024      # a signed coordinator transaction is ~1 KB
MAX_BATCH = 32
RATE_PER_S = 20.0          # per client IP, with bursts up to BURST
BURST = 100.0
MAX_CLIENTS = 4096         # the bucket table stays bounded whoever connects
UPSTREAM_TIMEOUT_S = 15.0
# anvil's block gas limit: what a transaction may use anyway, and ~50 ms of the tightest loop.
# The coordinator's heaviest view (a leaderboard page) needs well under 1% of it.
CALL_GAS_CAP = 30_000_000
SIMULATIONS = ("eth_call", "eth_estimateGas")


def rpc_error(req_id, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}}


def check_request(req) -> tuple[dict | None, dict | None]:
    """(request to forward, None) or (None, error reply) for one JSON-RPC request object."""
    if not isinstance(req, dict):
        return None, rpc_error(None, -32600, "invalid request: not an object")
    req_id = req.get("id")
    if not (req_id is None or isinstance(req_id, (int, str))) or isinstance(req_id, bool):
        return None, rpc_error(None, -32600, "invalid request: bad id")
    method = req.get("method")
    if not isinstance(method, str):
        return None, rpc_error(req_id, -32600, "invalid request: no method")
    if method not in ALLOWED:
        return None, rpc_error(req_id, -32601, f"method {method[:64]!r} is not available through this swarm's "
                                               "chain proxy")
    params = req.get("params", [])
    if not isinstance(params, (list, dict)):
        return None, rpc_error(req_id, -32602, "invalid params")
    if method in SIMULATIONS:
        params, why = bounded_call(params)
        if why:
            return None, rpc_error(req_id, -32602, f"{method}: {why}")
    return {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}, None


def bounded_call(params) -> tuple[list | None, str | None]:
    """``[call, block]`` with the call's gas at most CALL_GAS_CAP, or (None, why it is refused)."""
    if not isinstance(params, list) or not 1 <= len(params) <= 2 or not isinstance(params[0], dict):
        return None, "takes a call object and at most a block; state and block overrides are not available"
    call = dict(params[0])
    gas = call.get("gas", call.get("gasLimit"))
    if gas is not None:
        try:
            gas = int(gas, 16) if isinstance(gas, str) else gas
        except ValueError:
            gas = None
        if isinstance(gas, bool) or not isinstance(gas, int) or gas < 0:
            return None, "gas is not a quantity"
    call.pop("gasLimit", None)
    call["gas"] = hex(min(gas if gas is not None else CALL_GAS_CAP, CALL_GAS_CAP))
    return [call, *params[1:]], None


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RpcProxy:
    upstream: str                      # anvil's URL on 127.0.0.1
    host: str = "127.0.0.1"
    port: int = 0
    rate_per_s: float = RATE_PER_S
    burst: float = BURST
    refused: Counter = field(default_factory=Counter)  # reason -> count, for status and tests
    forwarded: int = 0
    join: object | None = None         # services.join_desk.JoinDesk: POST /join beside the chain

    def __post_init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self.url = ""

    # --- limits ------------------------------------------------------------------------------
    def _allow(self, client: str) -> bool:
        now = time.monotonic()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_CLIENTS:  # forget the quietest half
                for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1].at)[:MAX_CLIENTS // 2]:
                    del self._buckets[key]
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    # --- the one route ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        if not self._allow(request.remote or "?"):
            self.refused["rate"] += 1
            return web.json_response(rpc_error(None, -32005, "too many requests"), status=429,
                                     headers={"Retry-After": "1"})
        if request.content_length is not None and request.content_length > MAX_BODY:
            self.refused["too_large"] += 1
            return web.json_response(rpc_error(None, -32600, "request too large"), status=413)
        try:
            raw = await request.content.read(MAX_BODY + 1)
        except Exception:  # a client that breaks off mid-body
            self.refused["bad_body"] += 1
            return web.json_response(rpc_error(None, -32700, "unreadable body"), status=400)
        if len(raw) > MAX_BODY:
            self.refused["too_large"] += 1
            return web.json_response(rpc_error(None, -32600, "request too large"), status=413)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            self.refused["parse"] += 1
            return web.json_response(rpc_error(None, -32700, "parse error"), status=400)
        batch = isinstance(body, list)
        requests = body if batch else [body]
        if batch and not 0 < len(requests) <= MAX_BATCH:
            self.refused["batch"] += 1
            return web.json_response(rpc_error(None, -32600, f"a batch holds 1 to {MAX_BATCH} requests"), status=400)
        replies: list[dict | None] = []
        forward = []
        for req in requests:
            ok, err = check_request(req)
            if err is not None:
                self.refused["method" if err["error"]["code"] == -32601 else "invalid"] += 1
            replies.append(err)
            if ok is not None:
                forward.append((len(replies) - 1, ok))
        if forward:
            answers = await self._forward([ok for _, ok in forward])
            for (slot, ok), answer in zip(forward, answers):
                replies[slot] = answer if isinstance(answer, dict) else rpc_error(ok["id"], -32603, "upstream error")
        return web.json_response(replies if batch else replies[0])

    def _limited(self, handler):
        """The join desk's routes under the same per-client rate limit as the chain."""
        async def route(request: web.Request) -> web.Response:
            if not self._allow(request.remote or "?"):
                self.refused["rate"] += 1
                return web.json_response({"error": "too many requests"}, status=429, headers={"Retry-After": "1"})
            return await handler(request)
        return route

    async def _forward(self, requests: list[dict]) -> list:
        """Each request on its own to anvil (its batch replies need not keep our order)."""
        async def one(req: dict):
            try:
                async with self._session.post(self.upstream, json=req) as resp:
                    answer = await resp.json(content_type=None)
            except (ClientError, asyncio.TimeoutError, ValueError) as exc:
                log.debug("upstream failed for %s: %s", req["method"], exc)
                return rpc_error(req["id"], -32603, "the chain did not answer")
            if isinstance(answer, dict):
                answer["id"] = req["id"]
                self.forwarded += 1
            return answer
        return await asyncio.gather(*(one(r) for r in requests))

    # --- life ------------------------------------------------------------------------------------
    async def start(self) -> "RpcProxy":
        self._session = ClientSession(timeout=ClientTimeout(total=UPSTREAM_TIMEOUT_S))
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/", self._handle)
        if self.join is not None:
            app.router.add_post("/join", self._limited(self.join.handle))
            app.router.add_post("/join/challenge", self._limited(self.join.challenge))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sock = site._server.sockets[0]  # the port chosen when port was 0
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        log.info("chain proxy on %s -> %s", self.url, self.upstream)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
