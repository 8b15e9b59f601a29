"""Hugging Face push: repo naming, and a failing hub never stops training nor leaks the token."""

import io
import logging
import socket

import torch

from desktop.config import load_config
from desktop.events import EventSink, decode
from desktop.node.grpo import GRPOSettings, GRPOTrainer
from desktop.node.hf_push import HubPusher, make_pusher, repo_name
from desktop.node.models import build_tiny_model, load_tiny_tokenizer


def test_repo_name_follows_rl_swarm():
    assert repo_name("alice", "Qwen/Qwen2.5-Coder-0.5B-Instruct", "swift quiet otter") == \
        "alice/Qwen2.5-Coder-0.5B-Instruct-Gensyn-Swarm-swift-quiet-otter"
    assert repo_name("bob", "tiny:tiny", "a b c") == "bob/tiny-tiny-Gensyn-Swarm-a-b-c"


def test_unreachable_hub_is_a_warning_not_a_crash(caplog):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    tok = load_tiny_tokenizer()
    trainer = GRPOTrainer(build_tiny_model(tok), tok, GRPOSettings())
    out = io.StringIO()
    token = "hf_" + "Z" * 34
    pusher = HubPusher(token, "alice", "tiny:tiny", "a b c", trainer, EventSink(out), endpoint=dead)
    with caplog.at_level(logging.WARNING):
        pusher(3)
        pusher.thread.join(60)
    evs = [decode(line) for line in out.getvalue().splitlines()]
    push = [e for e in evs if e["type"] == "hf_push"]
    assert push
    assert push[0]["ok"] is False
    assert push[0]["round"] == 3
    assert any(e["type"] == "warning" and "push failed" in e["message"] for e in evs)
    assert token not in out.getvalue()


def test_push_needs_the_switch_and_a_token(monkeypatch):
    cfg = load_config(None, {"hf.push": True})
    out = io.StringIO()
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert make_pusher(cfg, None, "m", None, EventSink(out)) is None
    assert "HF_TOKEN" in out.getvalue()
    assert make_pusher(load_config(), None, "m", None, EventSink(io.StringIO())) is None
