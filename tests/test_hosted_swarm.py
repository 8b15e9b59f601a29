"""A hosted swarm across "machines": `rl-swarm host` on one, `rl-swarm join CODE` on two others,
each joiner running its own services (login server on the host's chain) and node. The joiners
train 3 rounds, trade rollouts through the host's bootnode and submit rewards the host's chain
records. Machines are separate data dirs on loopback, and, where this test may make network
namespaces (root, `ip`), separate namespaces joined by a veth pair: traffic only there."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.procs import CLI, ROOT, EventProcess, env, free_port

pytestmark = pytest.mark.slow

NS = ("rlsw-host", "rlsw-a", "rlsw-b")
WIRE = "rlsw-wire"
PROBE = ("import json, sys, urllib.request; r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], "
         "data=sys.argv[2].encode(), headers={'Content-Type': 'application/json'}), timeout=10); "
         "print(json.loads(r.read())['error']['code'])")
ACCOUNT = ("import json, sys, pathlib, urllib.request as u; i = json.loads(pathlib.Path(sys.argv[1], 'chain', "
           "'services.json').read_text()); t = pathlib.Path(i['api_token_file']).read_text().strip(); "
           "r = u.build_opener(u.ProxyHandler({})).open(u.Request(i['login_url'] + '/api/local-account', "
           "data=b'{\"email\": \"host@lab.rl-swarm.net\"}', headers={'Authorization': 'Bearer ' + t, "
           "'Content-Type': 'application/json'}), timeout=30); print(json.loads(r.read())['orgId'])")
ADDR = {"rlsw-host": "10.77.0.1", "rlsw-a": "10.77.0.2", "rlsw-b": "10.77.0.3"}


def _netns_possible() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


LOOPBACK = {"host": ([], "127.0.0.1"), "a": ([], "127.0.0.1"), "b": ([], "127.0.0.1")}


@pytest.fixture
def machines():
    """{"host": (prefix, address), "a": ..., "b": ...}: how to run a command on each machine.
    Three network namespaces where this test may make them, else three data dirs on loopback
    (the same code path but one network: said in the test's output)."""
    if not _netns_possible():
        print("no network namespaces here (root and iproute2 needed): the machines share loopback")
        yield LOOPBACK
        return
    run = lambda *a: subprocess.run(["ip", *a], check=True, capture_output=True)  # noqa: E731
    try:
        # the wire (a bridge) lives in a namespace of its own: where Docker runs, bridged frames in the
        # root namespace pass through its firewall (FORWARD policy DROP); in here there is none
        run("netns", "add", WIRE)
        run("-n", WIRE, "link", "add", "rlsw-br", "type", "bridge")
        run("-n", WIRE, "link", "set", "rlsw-br", "up")
        for i, ns in enumerate(NS):
            run("netns", "add", ns)
            run("link", "add", f"rlsw-v{i}", "type", "veth", "peer", "name", f"rlsw-p{i}")
            run("link", "set", f"rlsw-p{i}", "netns", ns)
            run("link", "set", f"rlsw-v{i}", "netns", WIRE)
            run("-n", WIRE, "link", "set", f"rlsw-v{i}", "master", "rlsw-br")
            run("-n", WIRE, "link", "set", f"rlsw-v{i}", "up")
            run("-n", ns, "addr", "add", f"{ADDR[ns]}/24", "dev", f"rlsw-p{i}")
            run("-n", ns, "link", "set", f"rlsw-p{i}", "up")
            run("-n", ns, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        _teardown()
        print(f"cannot make network namespaces here ({exc.stderr.decode()[:200]}): the machines share loopback")
        yield LOOPBACK
        return
    try:
        yield {name: (["ip", "netns", "exec", ns], ADDR[ns]) for name, ns in zip(("host", "a", "b"), NS)}
    finally:
        _teardown()


def _teardown():
    for ns in NS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "del", WIRE], capture_output=True)  # the bridge and its ends go with it
    subprocess.run(["ip", "link", "del", "rlsw-br"], capture_output=True)  # from before the wire had a namespace
    for i in range(len(NS)):
        subprocess.run(["ip", "link", "del", f"rlsw-v{i}"], capture_output=True)


def _data(tmp_path: Path, name: str, dht_host: str | None = None, **ports) -> Path:
    data = tmp_path / name
    (data / "config").mkdir(parents=True)
    lines = ["ports:"] + [f"  {k}: {v}" for k, v in ports.items()]
    lines += ["training:", "  max_new_tokens: 24", "swarm:", "  expected_peers: 2", "  gather_timeout: 30"]
    lines += [f"  host: {dht_host}"] if dht_host else []
    (data / "config" / "config.yaml").write_text("\n".join(lines) + "\n")
    return data


def test_two_joiners_train_together_on_a_hosted_swarm(tmp_path, machines):
    host_prefix, host_ip = machines["host"]
    host_data = _data(tmp_path, "host", dht_host=host_ip, rpc=free_port(), login=free_port())
    port, dht_port = free_port(), free_port()
    host_log = open(tmp_path / "host.out", "w")
    host = subprocess.Popen(host_prefix + CLI + ["host", "--data-dir", str(host_data), "--bind", host_ip,
                                                 "--port", str(port), "--dht-port", str(dht_port), "--uses", "2",
                                                 "--name", "test lab"],
                            stdout=host_log, stderr=subprocess.STDOUT, cwd=ROOT, env=env(), start_new_session=True)
    procs: list = []
    try:
        deadline = time.monotonic() + 180
        while "rlsw2." not in (tmp_path / "host.out").read_text():
            assert host.poll() is None and time.monotonic() < deadline, (tmp_path / "host.out").read_text()
            time.sleep(0.5)
        out = (tmp_path / "host.out").read_text()
        code = next(line for line in out.splitlines() if line.startswith("rlsw2."))
        assert f"answers on {host_ip}: yes" in out

        nodes, datas = {}, {}
        # the host trains too, as the app's own peer does: signed in on its own login server (what the
        # app's sign-in page does), it finds the bootnode on the chain
        made = subprocess.run(host_prefix + [sys.executable, "-c", ACCOUNT, str(host_data)], capture_output=True,
                              text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        node_cmd = ["node", "--pool", "tiny", "--json-events", "--swarm", "--data-dir", str(host_data), "--rounds", "3",
                    "--org-id", made.stdout.strip()]
        nodes["host"] = EventProcess(node_cmd, tmp_path / "host-node.err", prefix=host_prefix)
        procs.append(nodes["host"])
        for name in ("a", "b"):
            prefix, _ip = machines[name]
            data = datas[name] = _data(tmp_path, name, login=free_port())
            check = subprocess.run(prefix + CLI + ["join", "--check", code], capture_output=True, text=True, cwd=ROOT,
                                   env=env(), timeout=120)  # the preflight from outside the host's machine
            assert check.returncode == 0, check.stdout + check.stderr
            assert [line[:2] for line in check.stdout.splitlines()] == ["ok"] * 4, check.stdout
            node_cmd = ["node", "--pool", "tiny", "--json-events", "--data-dir", str(data), "--rounds", "3"]
            if name == "a":  # the steps one by one, as the app takes them
                done = subprocess.run(prefix + CLI + ["join", code, "--data-dir", str(data)], capture_output=True,
                                      text=True, cwd=ROOT, env=env(), timeout=120)
                assert done.returncode == 0, done.stderr
                assert json.loads((data / "swarm.json").read_text())["name"] == "test lab"
                services = EventProcess(["services", "--json", "--data-dir", str(data)], tmp_path / f"{name}-svc.err",
                                        prefix=prefix)
                procs.append(services)
                assert services.wait_for(lambda e: e["type"] == "services_ready", 120), "joiner services"
            else:  # one command, as a container runs it: join, then its services beside the node
                node_cmd += ["--join", code]
            node = EventProcess(node_cmd, tmp_path / f"{name}-node.err", prefix=prefix)
            procs.append(node)
            nodes[name] = node
        for name, node in nodes.items():
            assert node.proc.wait(400) == 0, (tmp_path / f"{name}-node.err").read_text()[-3000:]
        ids = {n: next(e["peer_id"] for e in node.events if e["type"] == "dht_ready") for n, node in nodes.items()}
        heard = {n: {p for e in node.events if e["type"] == "rollouts" for p in e["peers"]} for n, node in nodes.items()}
        for name in ("a", "b"):  # the host's node is not signed in here (the app signs it in): its rewards wait
            assert any(e["type"] == "chain_submitted" and e["sent"] > 0 for e in nodes[name].events), f"{name}: no reward"
        assert ids["b"] in heard["a"] and ids["a"] in heard["b"], "the joiners never received each other's rollouts"
        assert heard["host"] & {ids["a"], ids["b"]}, "the host's own node never received a joiner's rollouts"
        assert ids["host"] in heard["a"] | heard["b"], "no joiner received the host's own node's rollouts"
        # `rl-swarm swarm-status` on joiner a's machine (the Swarm page's rows): the DHT side from its
        # node's status file, the chain side through the host's proxy; both peers, with rewards
        status = subprocess.run(machines["a"][0] + CLI + ["swarm-status", "--json", "--data-dir", str(datas["a"])],
                                capture_output=True, text=True, cwd=ROOT, env=env(), timeout=120)
        assert status.returncode == 0, status.stderr
        view = json.loads(status.stdout)
        rows = {row["peer_id"]: row for row in view["peers"]}
        assert rows[ids["a"]]["me"] and view["node"]["state"] == "stopped"
        assert rows[ids["b"]]["round"] is not None and rows[ids["b"]]["ts"]  # heard on the DHT
        assert all(rows[ids[n]]["total_reward"] is not None for n in ("a", "b"))  # registered on the chain
        table = subprocess.run(machines["b"][0] + CLI + ["swarm-status", "--data-dir", str(datas["b"])],
                               capture_output=True, text=True, cwd=ROOT, env=env(), timeout=120)
        assert table.returncode == 0 and ids["a"] in table.stdout and "(you)" in table.stdout, table.stderr
        # and a joiner, from its own machine, cannot mint itself money through the proxy
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": ["0x" + "11" * 20, "0x1"]})
        probe = subprocess.run(machines["a"][0] + [sys.executable, "-c", PROBE, f"http://{host_ip}:{port}", body],
                               capture_output=True, text=True, timeout=60)
        assert probe.stdout.strip() == "-32601", probe.stderr
        # the second time: the container of joiner b starts again with the same code (spent now): it
        # goes straight on as the peer it was
        again = EventProcess(["node", "--pool", "tiny", "--json-events", "--data-dir", str(datas["b"]), "--rounds", "1",
                              "--join", code], tmp_path / "b-again.err", prefix=machines["b"][0])
        procs.append(again)
        assert again.proc.wait(400) == 0, (tmp_path / "b-again.err").read_text()[-3000:]
        assert "has joined this swarm already" in (tmp_path / "b-again.err").read_text()
        assert next(e["peer_id"] for e in again.events if e["type"] == "dht_ready") == ids["b"]
        assert again.count("round_finished") == 1
    finally:
        for p in procs:
            p.stop()
        os.killpg(host.pid, signal.SIGTERM)
        try:
            host.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(host.pid, signal.SIGKILL)
        host_log.close()
