"""Joining a hosted swarm with an invite code: check it, check the host, make our own account,
have the host fund it, then save the `swarm` profile. Nothing is saved unless every step worked.

What is saved: ``<data>/swarm.json`` (the swarm's public facts from the invite, never its secret)
and ``config.yaml``'s ``profile: swarm`` with the swarm's bootnodes. From then on `rl-swarm
services` runs only the login server, on the host's chain (services.stack.RemoteChain), and the
node talks to the host's chain and DHT like a local peer does to its own.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from desktop.config import load_config, save_config
from desktop.swarm.bootnodes import NOT_DIALABLE, answering_bootnodes
from desktop.services.accounts import AccountStore, InvalidEmail, normalize_email
from desktop.services.invites import Invite, InviteError, decode, join_message, printable, when
from desktop.utils.fsutil import write_private


SWARM_FILE = "swarm.json"
TIMEOUT_S = 10.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the host, not a web proxy


class JoinError(Exception):
    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Joined:
    name: str
    address: str
    org_id: str
    funded: bool
    rpc: str


def swarm_file(data_dir: str | Path) -> Path:
    return Path(data_dir) / SWARM_FILE


def read_swarm(data_dir: str | Path) -> dict | None:
    """The saved swarm (rpc, chain_id, contract, name, ...), or None when none was joined."""
    try:
        data = json.loads(swarm_file(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and {"rpc", "chain_id", "contract"} <= set(data) else None


def joined_already(code: str, data_dir: str | Path) -> bool:
    """Whether ``data_dir`` has joined the swarm this invite is for (with it or another invite): a
    container started again with the same code runs on, and never spends the invite twice.
    InviteError where the code is no invite."""
    invite = decode(code)
    saved = read_swarm(data_dir)
    try:
        return saved is not None and (saved["rpc"], str(saved["contract"]).lower(), int(saved["chain_id"])) == \
            (invite.rpc, invite.contract.lower(), int(invite.chain_id))
    except (TypeError, ValueError):  # a swarm.json edited by hand: join again
        return False


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with _DIRECT.open(req, timeout=TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read(65536))
    except urllib.error.HTTPError as err:
        try:
            return err.code, json.loads(err.read(65536))
        except ValueError:
            return err.code, {}
    except ValueError:
        return 502, {}


def _rpc(url: str, method: str, params: list) -> object:
    status, reply = _post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    if status != 200 or "result" not in reply:
        error = reply.get("error")
        detail = error.get("message", status) if isinstance(error, dict) else status
        raise JoinError(f"the host's chain refused {method}: {printable(detail)}", 1)
    return reply["result"]


def check_host(invite: Invite) -> None:
    """The host's chain answers, is the invite's chain, and holds the coordinator."""
    try:
        chain_id = int(_rpc(invite.rpc, "eth_chainId", []), 16)
        code = _rpc(invite.rpc, "eth_getCode", [invite.contract, "latest"])
    except (OSError, urllib.error.URLError) as exc:
        raise JoinError(f"the host at {invite.rpc} does not answer ({getattr(exc, 'reason', exc)}); is its "
                        "swarm running, and is its port open to you (port forwarding)?", 1) from None
    if chain_id != invite.chain_id:
        raise JoinError(f"the host's chain is chain {chain_id}, but the invite says {invite.chain_id}: "
                        "the invite is not for this host")
    if not isinstance(code, str) or len(code) <= 2:
        raise JoinError(f"the host's chain has no coordinator at {invite.contract}: the invite is out of date")


def check_invite(code: str) -> list[tuple[str, bool, str]]:
    """`rl-swarm join --check`: from this machine, does the invited swarm answer? (check, ok,
    detail) for the code, the host's chain, its join desk and its bootnode. Touches no file and
    spends no use of the invite: a host behind NAT asks a friend to run it."""

    try:
        invite = decode(code)
    except InviteError as exc:
        return [("invite", False, str(exc))]
    results = [("invite", True, f"'{invite.name}', valid until {when(invite.expires)}")]
    try:
        check_host(invite)
        results.append(("chain", True, f"{invite.rpc} is chain {invite.chain_id} with the coordinator"))
    except JoinError as exc:
        results.append(("chain", False, str(exc)))
    status, reply = 0, {}
    try:  # no secret: the desk must answer, and refuse
        status, reply = _post(invite.join + "/challenge", {"invite": invite.id, "secret": ""})
    except (OSError, urllib.error.URLError) as exc:
        reply = {"error": str(getattr(exc, "reason", exc))}
    results.append(("join desk", status in (400, 403), f"{invite.join} answers" if status in (400, 403) else
                    f"{invite.join} does not answer as a join desk ({_said(reply, status)})"))
    usable, refused = answering_bootnodes(invite.boot, own_peer_id="", timeout=TIMEOUT_S)
    results += [("bootnode", True, f"{maddr} answers") for maddr in usable]
    results += [("bootnode", False, f"{maddr} is not a TCP address" if why == NOT_DIALABLE else
                 f"{maddr} does not answer ({why}): the host must open or forward this TCP port")
                for maddr, why in refused.items()]
    return results


def join(code: str, data_dir: str | Path, config_file: Path, *, email: str | None = None) -> Joined:
    data_dir = Path(data_dir)
    try:
        invite = decode(code)
    except InviteError as exc:
        raise JoinError(str(exc)) from None
    try:
        email = normalize_email(email or f"joiner-{invite.id.lower()}@{_slug(invite.name)}.rl-swarm.net")
    except InvalidEmail as exc:
        raise JoinError(str(exc)) from None
    config = load_config(config_file if config_file.exists() else None)  # ConfigError: the caller's
    check_host(invite)

    store = AccountStore(data_dir)
    before = _Before(data_dir, store)
    account, created = store.sign_in(email)
    try:
        status, reply = _ask_funding(invite, account.address, store.private_key(account.org_id))
    except (OSError, urllib.error.URLError) as exc:
        status, reply = 0, {"error": f"the host's join address does not answer ({getattr(exc, 'reason', exc)})"}
    if status != 200:
        before.restore(store, account, created)
        raise JoinError(f"the host refused to let this peer join: {_said(reply, status)}",
                        2 if status in (400, 403) else 1)

    config.profile = "swarm"
    config.swarm.enabled = True
    config.swarm.host = "0.0.0.0"  # other machines must reach our DHT too
    config.swarm.initial_peers = list(invite.boot)
    config.chain.enabled = True
    record = {"name": invite.name, "invite": invite.id, "rpc": invite.rpc, "chain_id": invite.chain_id, "contract": invite.contract,
              "join": invite.join, "boot": list(invite.boot), "address": account.address,
              "org_id": account.org_id, "joined": int(time.time())}
    write_private(swarm_file(data_dir), json.dumps(record, indent=2).encode())
    save_config(config, config_file)
    return Joined(invite.name, account.address, account.org_id, bool(reply.get("funded")), invite.rpc)


def _ask_funding(invite: Invite, address: str, key: str) -> tuple[int, dict]:
    """The join desk's two steps: a nonce for this invite, then the request signed by our key."""
    from eth_account import Account  # web3's signer; the app's own process never runs a join
    from eth_account.messages import encode_defunct

    status, reply = _post(invite.join + "/challenge", {"invite": invite.id, "secret": invite.secret})
    if status != 200:
        return status, reply
    nonce = reply.get("nonce")
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= 64:
        return 502, {"error": "the host's join desk gave no usable nonce"}
    message = join_message(invite.chain_id, invite.contract, invite.id, nonce, address)
    signature = Account.sign_message(encode_defunct(text=message), private_key=key).signature.hex()
    return _post(invite.join, {"invite": invite.id, "secret": invite.secret, "address": address,
                               "nonce": nonce, "signature": "0x" + signature.removeprefix("0x")})


def _said(reply: dict, status: int) -> str:
    """What the host said, as plain text (it is another machine's word)."""
    error = reply.get("error") if isinstance(reply, dict) else None
    return printable(error) if error else f"HTTP {status}"


class _Before:
    """What signing in may change (the session files, new folders, the data dir itself), to put
    back if the host says no."""

    def __init__(self, data_dir: Path, store) -> None:
        self.files = {p: (p.read_bytes() if p.exists() else None) for p in (store.user_data_file, store.user_api_key_file)}
        made = [store.accounts_dir, store.login_dir, store.secrets.dir, *Path(data_dir, "x").parents]
        self.dirs = [d for d in made if not d.exists()]  # deepest first: parents come after children

    def restore(self, store, account, created: bool) -> None:
        for path, content in self.files.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                write_private(path, content)
        if created:
            store._path(account.email).unlink(missing_ok=True)
            (store.secrets.dir / f"{account.org_id}.key").unlink(missing_ok=True)
        for folder in self.dirs:
            try:
                folder.rmdir()  # only when empty: never anything that was there before
            except OSError:
                pass


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return out[:40] or "swarm"
