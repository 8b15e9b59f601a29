"""Warm-start weights of the tiny pool: shipped file loads, answers in the CodeZero format with
varied rewards, the builder works end to end, and unfit files are ignored with a warning."""

from __future__ import annotations

import logging

import pytest
import torch

from desktop.codezero.generator import ProblemGenerator
from desktop.node import models as m
from desktop.node import warmstart as ws

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok():
    return m.load_tiny_tokenizer()


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_shipped_tiny_weights_load(tok, caplog):
    path = m.tiny_warm_path("tiny")
    assert path.is_file()
    assert path.stat().st_size < 3_000_000
    with caplog.at_level(logging.WARNING, logger=m.__name__):
        warm = m.build_tiny_model(tok, m.TINY_SIZES["tiny"], seed=0)
    assert not caplog.records
    cold = m.build_tiny_model(tok, m.TINY_SIZES["tiny"], seed=0, warm=False)
    assert not _same_weights(warm, cold)
    assert _same_weights(cold, m.build_tiny_model(tok, m.TINY_SIZES["tiny"], seed=0, warm=False))
    # The seed only shapes the random init: warm weights are the same whatever it is.
    assert _same_weights(warm, m.build_tiny_model(tok, seed=5))
    assert warm.lm_head.weight.data_ptr() == warm.model.embed_tokens.weight.data_ptr()
    loaded, _ = m.load_model("tiny:tiny", device="cpu", dtype="float32")
    assert _same_weights(warm, loaded)


@pytest.mark.slow
def test_warm_model_answers_in_format_with_varied_rewards(tok):
    model = m.build_tiny_model(tok, m.TINY_SIZES["tiny"]).eval()
    gen = ProblemGenerator(2024)
    problems = [gen.generate(i % 5) for i in range(8)]
    torch.manual_seed(0)
    stats = ws.evaluate(model, tok, problems, samples=2, max_new_tokens=256)
    flat = [r for group in stats["rewards"] for r in group]
    assert len(flat) == 16
    assert len(set(flat)) > 1  # GRPO would not skip every step
    assert stats["fence"] >= 0.25
    assert stats["groups_with_spread"] > 0


@pytest.mark.slow
def test_builder_end_to_end(tmp_path, tok, capsys):
    assert ws.main(["--steps", "10", "--batch-size", "2", "--out", str(tmp_path)]) == 0
    path = tmp_path / "tiny.safetensors"
    assert "wrote" in capsys.readouterr().out
    assert path.is_file()
    model = m.build_tiny_model(tok, warm=False)
    before = [t.clone() for t in model.state_dict().values()]
    assert m.load_warm_weights(model, tok, path)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.state_dict().values()))


def test_training_examples_mask_only_the_answer(tok):
    examples = ws.training_examples(tok, 12, seed=1, humaneval_share=0.25)
    assert len(examples) == 12
    for ids, n_prompt in examples:
        answer = tok.decode(ids[n_prompt:])
        assert answer.startswith("```python\n")
        assert answer.endswith("\n```" + m.IM_END)
        assert tok.decode(ids[:n_prompt]).endswith("<|im_start|>assistant\n")
    _, _, labels = ws._batch(examples[:2], tok.pad_token_id)
    ids, n_prompt = examples[0]
    assert (labels[0, :n_prompt] == ws.IGNORE).all()
    assert labels[0, n_prompt:len(ids)].tolist() == ids[n_prompt:]


@pytest.fixture
def warm_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(m, "TINY_WARM_DIR", tmp_path)
    return tmp_path


def _assert_ignored(tok, caplog, match: str):
    with caplog.at_level(logging.WARNING, logger=m.__name__):
        model = m.build_tiny_model(tok, m.TINY_SIZES["tiny"], seed=3)
    assert _same_weights(model, m.build_tiny_model(tok, m.TINY_SIZES["tiny"], seed=3, warm=False))
    assert any(match in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_mismatched_shapes_are_ignored(tok, warm_dir, caplog):
    other = m.build_tiny_model(tok, m.TinyModelSpec(hidden_size=32, intermediate_size=64), warm=False)
    ws.save_weights(other, tok, "tiny", warm_dir)
    _assert_ignored(tok, caplog, "do not fit")


def test_other_tokenizer_and_garbage_are_ignored(tok, warm_dir, caplog):
    model = m.build_tiny_model(tok, warm=False)
    path = ws.save_weights(model, tok, "tiny", warm_dir)
    vocab = dict(tok.get_vocab())
    vocab["x"], vocab["y"] = vocab["y"], vocab["x"]  # same size, other tokens

    class Other:
        def get_vocab(self):
            return vocab

    assert not m.load_warm_weights(model, Other(), path)
    path.write_bytes(b"not a safetensors file")
    _assert_ignored(tok, caplog, "unreadable")


def test_sizes_without_weights_stay_random(tok, warm_dir, caplog):
    spec = m.TINY_SIZES["tiny"]
    with caplog.at_level(logging.WARNING, logger=m.__name__):
        model = m.build_tiny_model(tok, spec, seed=4)
    assert not caplog.records  # no file for the size is normal (tiny-m ships none): no warning
    assert _same_weights(model, m.build_tiny_model(tok, spec, seed=4, warm=False))
