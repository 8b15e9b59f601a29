"""Which coordinator a node uses: the local services' discovery file, or the public testnet."""

import pytest
import socket
import subprocess
import sys

from desktop.chain.connect import resolve_profile
from desktop.config import load_config


def test_testnet_profile_uses_the_public_contract_and_any_rpc_given(tmp_path):
    cfg = load_config(None, {"profile": "testnet"})
    profile = resolve_profile(cfg, tmp_path)
    assert profile.chain_id == 685685
    assert profile.contract_address == "0x7745a8FE4b8D2D2c3BB103F8dCae822746F35Da0"
    assert profile.rpc_url == "https://gensyn-testnet.g.alchemy.com/public"
    custom = resolve_profile(load_config(None, {"profile": "testnet", "chain.rpc_url": "http://127.0.0.1:9",
                                                "chain.login_url": "http://127.0.0.1:4000"}), tmp_path)
    assert (custom.rpc_url, custom.login_url) == ("http://127.0.0.1:9", "http://127.0.0.1:4000")
    assert custom.contract_address == profile.contract_address


def test_local_profile_without_services_has_no_chain(tmp_path):
    assert resolve_profile(load_config(), tmp_path) is None
    assert resolve_profile(load_config(None, {"chain.enabled": False, "profile": "testnet"}), tmp_path) is None


@pytest.mark.slow
def test_status_against_an_unreachable_rpc_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"profile: testnet\nchain:\n  rpc_url: http://127.0.0.1:{port}\n")
    proc = subprocess.run([sys.executable, "-m", "desktop.cli", "chain", "status", "--config", str(cfg),
                           "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1
    assert f"127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
