"""The chaos suite's attackers: hostile DHT records against a running swarm, and an API fuzzer."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
from pathlib import Path

import msgpack


def _junk(kind: int, m_id: str, victim: str, rng: random.Random, victim_record: bytes | None):
    """(key, subkey suffix, value) of the kind-th sort of junk; values the honest nodes must refuse."""
    from desktop.swarm.records import batch_id_of, bucket_of, encode_roster, roster_key, rollouts_key

    own = rollouts_key(m_id)

    def record(peer, round_number, **over):
        obj = {"v": 2, "kind": "rollouts", "peer_id": peer, "round": round_number, "stage": 0, "model": "m",
               "items": [{"ref": ["gen", 1, 0, 1], "batch_id": batch_id_of("q"), "completions": ["c"], "rewards": []}]}
        obj.update(over)
        return msgpack.packb(obj, use_bin_type=True)

    choices = [
        (own, b"", b"\xc1\xc1 not msgpack" + rng.randbytes(8)),
        (own, b"", {1: 2}),
        (own, b"", b"\x81\xa3\xff\xfe\xfd\x01"),
        (own, b"", b"\x91" * 2000 + b"\x01"),
        (own, b"", record(m_id, 1, v=1)),
        (rollouts_key(victim), b"", record(victim, 5)),              # forged: the victim's id, our key
        (rollouts_key(victim), b"", victim_record or record(victim, 5)),  # a replay of the victim's record
        (own, b"#%d" % rng.randrange(10**6), record(m_id, 5)),       # subkey flood
        (roster_key((bucket_of(m_id) + 1) % 16), b"", encode_roster(m_id, 5, "solver", int(time.time()))),
        (roster_key(bucket_of(m_id)), b"", msgpack.packb({"v": 2, "kind": "roster", "peer_id": m_id, "round": 1,
                                                          "role": "king", "at": 1})),
        ("rollouts/5/0", b"", record(m_id, 5)),                      # the old shared round key
        ("clock", b"", b"junk"),
    ]
    return choices[kind % len(choices)]


def attack(work: Path, victim_events: list[dict], total: int, services) -> tuple[int, int]:
    """Send ``total`` hostile stores (junk from a validator-less client, an oversized value, and
    records from fresh unregistered keys) at the swarm. Returns (refused, sent)."""
    import hivemind
    from hivemind.dht.crypto import RSASignatureValidator
    from hivemind.utils import get_dht_time

    from desktop.identity import create_identity, load_identity
    from desktop.swarm.dht import SwarmDHT, _identity_signing_key
    from desktop.swarm.exchange import DHTCommunication
    from desktop.swarm.records import make_item, rollouts_key

    work.mkdir(parents=True, exist_ok=True)
    ready = next(e for e in victim_events if e["type"] == "dht_ready")
    victim, boot = ready["peer_id"], ready["maddrs"]
    ident = create_identity(work / "m.pem")
    signer = RSASignatureValidator(_identity_signing_key(load_identity(ident.path).private_key))
    rng = random.Random(7)
    raw = hivemind.DHT(initial_peers=boot, start=True, client_mode=True, record_validators=[signer],
                       host_maddrs=["/ip4/127.0.0.1/tcp/0"], startup_timeout=60)
    refused = sent = 0
    sybils = []
    try:
        reader = SwarmDHT(create_identity(work / "reader.pem").path, initial_peers=boot)
        victim_record = next(iter(reader.get(rollouts_key(victim)).values()), None)
        reader.shutdown()
        pending = []
        for i in range(total - 8):
            key, suffix, value = _junk(i, ident.peer_id, victim, rng, victim_record)
            pending.append(raw.store(key, value, get_dht_time() + 300, subkey=signer.local_public_key + suffix,
                                     return_future=True))
            if len(pending) >= 64:
                results = [f.result(60) for f in pending]
                refused += sum(not r for r in results)
                sent += len(results)
                pending = []
        results = [f.result(60) for f in pending]
        refused, sent = refused + sum(not r for r in results), sent + len(results)
        # an oversized value and fresh keys that publish valid records: the validator refuses the first,
        # readers the rest (nobody registered them on the coordinator)
        for n in range(2):
            dht = SwarmDHT(create_identity(work / f"sybil{n}.pem").path, initial_peers=boot)
            sybils.append(dht)
            comm = DHTCommunication(dht, peer_id=dht.peer_id, model_name="m", close_dht=False)
            for r in range(3):
                ok = comm.publish(r, 0, [make_item(("gen", 1, 0, r), "q", ["a", "b"], [1.0, 0.0])])
                sent += 1
                refused += 1 if ok else 0  # stored, but no reader may take it (checked by the caller)
            sent += 1
            refused += not dht.store(rollouts_key(dht.peer_id), dht.subkey, b"\x00" * (300 * 1024), 60)
    finally:
        raw.shutdown()
        for dht in sybils:
            dht.shutdown()
    return refused, sent


def fuzz_api(services, count: int) -> tuple[int, int]:
    """``count`` malformed or hostile requests at the login server; returns (sent, 5xx answers)."""
    rng = random.Random(3)
    host, port = services.info["login_url"].split("//")[1].split(":")
    port = int(port)
    token = services.token()
    paths = ["/api/register-peer", "/api/submit-reward", "/api/submit-winner", "/api/get-api-key-status",
             "/api/user-data", "/api/local-account", "/api/add-bootnodes", "/login", "/login/logout",
             "/login/status", "/", "/nope", "/api/../../etc/passwd", "/%00", "/api/" + "a" * 3000]
    bodies = [b"", b"{", b"[]", b"null", b'{"orgId": 5}', b'{"orgId": "x", "peerId": "' + b"Q" * 500 + b'"}',
              json.dumps({"orgId": "x", "roundNumber": 2**300, "stageNumber": -1, "reward": "a"}).encode(),
              b"[" * 5000 + b"]" * 5000, b"\xff\xfe" * 100, json.dumps({"email": "a" * 100_000}).encode(),
              json.dumps({"addrs": ["/ip4/1.2.3.4/tcp/1/p2p/Qm" + "x" * 40] * 100}).encode()]
    errors = 0
    for i in range(count):
        if i % 25 == 0:  # raw junk: a broken chunked body, a garbage request line
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(rng.choice([b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                                      b"\x16\x03\x01\x02\x00" + rng.randbytes(60), b"GET / HTTP/9.9\r\n\r\n"]))
                try:
                    head = s.recv(64)
                except OSError:
                    head = b""
            errors += head.startswith(b"HTTP/1.1 5") or head.startswith(b"HTTP/1.0 5")
            continue
        conn = http.client.HTTPConnection(host, port, timeout=15)
        headers = {"Content-Type": rng.choice(["application/json", "text/plain", "application/x-www-form-urlencoded"])}
        if rng.random() < 0.7:
            headers["Authorization"] = f"Bearer {token if rng.random() < 0.8 else 'wrong'}"
        if rng.random() < 0.1:
            headers["Host"] = "evil.example"
        try:
            conn.request(rng.choice(["GET", "POST", "PUT", "DELETE", "OPTIONS"]), rng.choice(paths),
                         body=rng.choice(bodies), headers=headers)
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException):
            status = 0  # the server closing a hostile connection is fine
        finally:
            conn.close()
        errors += status >= 500
    return count, errors
