"""GRPO on a real (tiny) Qwen2 model: batched generation, learning, checkpoint and resume."""

import pytest
import torch

from desktop.node.checkpoint import CheckpointStore
from desktop.node.grpo import GRPOSettings, GRPOTrainer
from desktop.node.models import TINY_SIZES, build_tiny_model, load_tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tiny_tokenizer()


def _trainer(tokenizer, **kw):
    torch.manual_seed(0)
    model = build_tiny_model(tokenizer, TINY_SIZES["tiny"], seed=0, warm=False)  # random: base rates
    settings = GRPOSettings(**{"num_generations": 4, "max_new_tokens": 6, "learning_rate": 1e-3, **kw})
    return GRPOTrainer(model, tokenizer, settings)


def test_all_completions_come_from_one_generate_call(tokenizer):
    trainer = _trainer(tokenizer)
    calls = []
    original = trainer.model.generate
    trainer.model.generate = lambda *a, **k: calls.append(k["input_ids"].shape) or original(*a, **k)
    prompts = ["write add", "a much longer prompt about sorting lists of numbers"]
    ids = [trainer.encode_prompt([{"role": "user", "content": p}]) for p in prompts]
    groups = trainer.generate(prompts, ids)
    assert len(calls) == 1
    assert calls[0][0] == 2  # one call; G copies made inside generate
    assert [len(g.completion_ids) for g in groups] == [4, 4]
    for g, p_ids in zip(groups, ids):
        assert g.prompt_ids == p_ids
        for comp, text, limit in zip(g.completion_ids, g.texts, g.hit_limit):
            assert 1 <= len(comp) <= 6
            assert limit == (len(comp) == 6 and comp[-1] not in trainer.eos_ids)
            assert tokenizer.pad_token_id not in comp[:-1] or tokenizer.pad_token_id in trainer.eos_ids
            assert text == tokenizer.decode(comp, skip_special_tokens=True)


def test_equal_rewards_skip_the_update(tokenizer):
    trainer = _trainer(tokenizer)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    ids = [trainer.encode_prompt([{"role": "user", "content": "x"}])]
    groups = trainer.generate(["x"], ids)
    result = trainer.step(groups, [[0.0] * 4])
    assert result.skipped
    assert result.loss is None
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    result = trainer.step(groups, [[1.0, 0.0, 0.0, 0.0]])
    assert not result.skipped
    assert result.loss is not None
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_kl_reference_model_is_frozen(tokenizer):
    trainer = _trainer(tokenizer, beta=0.04)
    ids = [trainer.encode_prompt([{"role": "user", "content": "x"}])]
    ref_before = [p.detach().clone() for p in trainer.ref_model.parameters()]
    trainer.step(trainer.generate(["x"], ids), [[1.0, 0.0, 0.5, 0.0]])
    assert all(torch.equal(a, b) for a, b in zip(ref_before, trainer.ref_model.parameters()))


@pytest.mark.slow
def test_learns_a_learnable_reward(tokenizer):
    """Reward 1 when the first sampled token is in a set with a ~12 % base rate."""
    trainer = _trainer(tokenizer, num_generations=8, max_new_tokens=1, learning_rate=1e-2)
    vocab = len(tokenizer)
    good = set(range(0, vocab, 8))  # every 8th id: ~12.5 % of a near-uniform first token
    prompts = ["solve task one", "solve task two"]
    ids = [trainer.encode_prompt([{"role": "user", "content": p}]) for p in prompts]
    history = []
    for step in range(150):
        groups = trainer.generate(prompts, ids)
        rewards = [[1.0 if comp[0] in good else 0.0 for comp in g.completion_ids] for g in groups]
        history.append(sum(map(sum, rewards)) / 16)
        if len(history) >= 5 and sum(history[-5:]) / 5 > 0.9:
            break
        trainer.step(groups, rewards)
    assert sum(history[:5]) / 5 < 0.4, history[:5]
    print(f"mean reward > 0.9 after {len(history)} steps")
    assert sum(history[-5:]) / 5 > 0.9, f"reward after {len(history)} steps: {history[-10:]}"


def test_checkpoint_restores_model_optimizer_and_rng(tokenizer, tmp_path):
    trainer = _trainer(tokenizer)
    ids = [trainer.encode_prompt([{"role": "user", "content": "x"}])]
    trainer.step(trainer.generate(["x"], ids), [[1.0, 0.0, 0.0, 0.0]])
    store = CheckpointStore(tmp_path, keep=2)
    for r in range(3):
        store.save(r, trainer.model, trainer.optimizer, "tiny:tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round-00000001.pt", "round-00000002.pt"]
    expected_next = torch.rand(3)

    other = _trainer(tokenizer)
    resumed = store.restore(other.model, other.optimizer, "tiny:tiny")
    assert resumed.round == 2
    for a, b in zip(trainer.model.state_dict().values(), other.model.state_dict().values()):
        assert torch.equal(a, b)
    assert other.optimizer.state_dict()["state"].keys() == trainer.optimizer.state_dict()["state"].keys()
    assert torch.equal(torch.rand(3), expected_next)  # RNG continues where the checkpoint left it


def test_torn_checkpoint_falls_back_to_the_previous_one(tokenizer, tmp_path):
    trainer = _trainer(tokenizer)
    store = CheckpointStore(tmp_path, keep=3)
    store.save(0, trainer.model, trainer.optimizer, "tiny:tiny")
    store.save(1, trainer.model, trainer.optimizer, "tiny:tiny")
    (tmp_path / "round-00000001.pt").write_bytes(b"torn")
    resumed = store.restore(trainer.model, trainer.optimizer, "tiny:tiny")
    assert resumed.round == 0
    assert any("round-00000001" in s for s in resumed.skipped)
    assert store.restore(trainer.model, trainer.optimizer, "other-model") is None
