"""Hosting from the local services (config ``hosting.enabled``, what the app's "Host a swarm…"
saves): `rl-swarm services` opens the proxy, join desk and bootnode and says so in a `hosting`
event; invites are made against it, a joiner checks and joins; a restart on the same data dir
opens the same swarm again; a port in use is said and the services go on for this machine."""

import json
import socket
import subprocess
from pathlib import Path

import pytest

from desktop.services.invites import decode
from tests.procs import CLI, ROOT, EventProcess, env, free_port

pytestmark = pytest.mark.slow


def _data(path: Path, hosting: dict) -> Path:
    (path / "config").mkdir(parents=True, exist_ok=True)
    lines = ["ports:", f"  rpc: {free_port()}", f"  login: {free_port()}"]
    lines += ["hosting:"] * bool(hosting) + [f"  {k}: {json.dumps(v)}" for k, v in hosting.items()]
    (path / "config" / "config.yaml").write_text("\n".join(lines) + "\n")
    return path


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, cwd=ROOT, env=env(), timeout=timeout)


def _services(data: Path, log: Path) -> tuple[EventProcess, dict]:
    proc = EventProcess(["services", "--json", "--data-dir", str(data)], log)
    ready = proc.wait_for(lambda e: e["type"] == "services_ready", 120)
    assert ready, log.read_text()[-2000:]
    hosting = proc.wait_for(lambda e: e["type"] == "hosting", 120)
    assert hosting, log.read_text()[-2000:]
    return proc, hosting


def test_services_host_the_swarm_twice_and_a_joiner_gets_in(tmp_path):
    port, dht_port = free_port(), free_port()
    host = _data(tmp_path / "host", {"enabled": True, "name": "kitchen", "bind": "127.0.0.1", "port": port,
                                     "dht_port": dht_port})
    boots = []
    for run in range(2):  # the second run: the same data dir, the same swarm opened again
        proc, ev = _services(host, tmp_path / f"host-{run}.err")
        try:
            assert ev["error"] is None and ev["name"] == "kitchen"
            assert ev["rpc"] == f"http://127.0.0.1:{port}" and ev["rpc_answers"] and ev["dht_answers"]
            boots.append(ev["boot"][0])
            made = _cli("host", "invite", "--uses", "1", "--expires", "1h", "--data-dir", str(host))
            assert made.returncode == 0, made.stderr
            code = made.stdout.split()[0]
            invite = decode(code)
            assert (invite.rpc, invite.name, list(invite.boot)) == (ev["rpc"], "kitchen", ev["boot"])
            # the bootnode is on the chain too: the host's own nodes read their bootnodes there
            status = _cli("chain", "status", "--json", "--data-dir", str(host))
            assert status.returncode == 0, status.stderr
            assert ev["boot"][0] in json.loads(status.stdout)["bootnodes"]
            if run == 1:
                check = _cli("join", "--check", code)
                assert check.returncode == 0, check.stdout + check.stderr
                assert [line[:2] for line in check.stdout.splitlines()] == ["ok"] * 4, check.stdout  # invite, chain, desk, bootnode
                joiner = _data(tmp_path / "joiner", {})
                joined = _cli("join", code, "--data-dir", str(joiner))
                assert joined.returncode == 0, joined.stderr
                again = _cli("join", code, "--data-dir", str(_data(tmp_path / "late", {})))
                assert again.returncode != 0 and "refused" in again.stderr, again.stderr  # its one use is spent
        finally:
            assert proc.stop() == 0
        assert not (host / "host" / "host.json").exists()  # no invites for a swarm that is not open
    assert boots[0] == boots[1]  # the bootnode keeps its identity across restarts


def test_a_port_in_use_is_said_and_the_services_go_on(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    data = _data(tmp_path / "host", {"enabled": True, "bind": "127.0.0.1", "port": busy.getsockname()[1],
                                     "dht_port": free_port()})
    try:
        proc, ev = _services(data, tmp_path / "host.err")
        try:
            assert ev["error"] and "cannot open the swarm" in ev["error"] and ev["rpc"] == ""
            status = _cli("chain", "status", "--json", "--data-dir", str(data))
            assert status.returncode == 0, status.stderr  # the local chain serves this machine still
            refused = _cli("join", "--check", "rlsw2.garbage")
            assert refused.returncode == 1 and refused.stdout.startswith("NO ")
        finally:
            assert proc.stop() == 0
    finally:
        busy.close()
