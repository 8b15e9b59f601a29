"""What test_image.sh asks of the container, through its dashboard published on 127.0.0.1.

    probe.py wait-rounds URL N TIMEOUT     every solver peer finished N rounds: print the state
    probe.py resumed BEFORE.json URL TIMEOUT
                                           the same peers (same ids) finished a round numbered past
                                           the last one in BEFORE.json: print the state
    probe.py rewarded CHAIN.json           `rl-swarm chain status --json`: every peer registered
                                           and some reward on the chain
    probe.py summary STATE.json            one line for the log

Exit 0 when it holds, 1 when not (with why on stderr).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
import urllib.request

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PEERS = 3  # the local swarm's solvers (rl-swarm swarm's default)


def state(url: str) -> dict | None:
    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
    request = urllib.request.Request(f"{parts.scheme}://{parts.netloc}/api/state", headers={"X-Dashboard-Token": token})
    try:
        with _DIRECT.open(request, timeout=10) as reply:
            data = json.loads(reply.read())
    except (OSError, ValueError):
        return None  # the container is (re)starting
    return {p["label"]: {"peer_id": p["peer_id"], "state": p["state"],
                         "last_round": max((r["round"] for r in p["history"]), default=None),
                         "rounds": p["rounds"]} for p in data["peers"]}


def _wait(url: str, timeout: float, ok) -> dict | None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = state(url)
        if seen and ok(seen):
            return seen
        time.sleep(5)
    print(f"last seen: {json.dumps(seen)}", file=sys.stderr)
    return None


def main(argv: list[str]) -> int:
    what = argv[0] if argv else ""
    if what == "wait-rounds":
        url, n, timeout = argv[1], int(argv[2]), float(argv[3])
        seen = _wait(url, timeout, lambda s: len(s) == PEERS and all(p["rounds"] >= n for p in s.values()))
    elif what == "resumed":
        before = json.load(open(argv[1]))
        url, timeout = argv[2], float(argv[3])

        def played_on(s: dict) -> bool:
            return set(s) == set(before) and all(
                s[k]["peer_id"] == before[k]["peer_id"] and s[k]["last_round"] is not None
                and s[k]["last_round"] > before[k]["last_round"] for k in before)
        seen = _wait(url, timeout, played_on)
    elif what == "rewarded":
        try:
            chain = json.load(open(argv[1]))
        except (OSError, ValueError):
            return 1
        peers = chain.get("peers", [])
        return 0 if len(peers) >= PEERS and sum(p["total_reward"] for p in peers) > 0 else 1
    elif what == "summary":
        s = json.load(open(argv[1]))
        print(", ".join(f"{k} {v['peer_id'][:12]}… round {v['last_round']} ({v['rounds']} played)"
                        for k, v in sorted(s.items())))
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if seen is None:
        return 1
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
