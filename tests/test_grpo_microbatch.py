"""GRPO as advertised: old log-probs once, the clip acting from the second step on, bounded micro-batches."""

import copy

import pytest
import torch
import torch.nn.functional as F

from desktop.node.grpo import GRPOSettings, GRPOTrainer, Group
from desktop.node.offpolicy import Row
from desktop.node.models import TINY_SIZES, build_tiny_model, load_tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tiny_tokenizer()


def _trainer(tokenizer, **kw):
    torch.manual_seed(0)
    model = build_tiny_model(tokenizer, TINY_SIZES["tiny"], seed=0, warm=False)
    settings = GRPOSettings(**{"num_generations": 4, "max_new_tokens": 12, "learning_rate": 3e-2, **kw})
    return GRPOTrainer(model, tokenizer, settings)


def _groups(trainer, n=3):
    prompts = [f"problem number {i} " * (i + 1) for i in range(n)]
    ids = [trainer.encode_prompt([{"role": "user", "content": p}]) for p in prompts]
    torch.manual_seed(1)
    return trainer.generate(prompts, ids), [[1.0, 0.0, 0.5, -1.0], [0.2, 1.2, 0.2, -1.0], [0.0, 1.0, 0.0, 1.0]][:n]


@pytest.mark.slow
def test_chunked_logps_equal_the_full_log_softmax(tokenizer):
    trainer = _trainer(tokenizer, logit_chunk=5)
    groups, _ = _groups(trainer)
    rows = [Row(g.prompt_ids, c, 0.0) for g in groups for c in g.completion_ids]
    ids, attention, mask = trainer._pack(rows)
    with torch.no_grad():
        chunked = trainer.token_logps(trainer.model, ids, attention, mask)
        logits = trainer.model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
        full = torch.gather(F.log_softmax(logits, -1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)[mask]
    assert torch.allclose(chunked, full, atol=1e-5)


def test_micro_batches_give_the_same_update_as_one_batch(tokenizer):
    big, small = _trainer(tokenizer), _trainer(tokenizer, micro_batch_tokens=64)
    small.model.load_state_dict(big.model.state_dict())
    for t in (big, small):  # plain SGD: Adam would blow float noise in near-zero gradients up to lr
        t.optimizer = torch.optim.SGD(t.model.parameters(), lr=1.0)
    groups, rewards = _groups(big)
    a, b = big.step(groups, rewards), small.step(groups, rewards)
    assert a.micro_batches == 1
    assert b.micro_batches > 3  # same samples, cut into many passes
    assert b.max_micro_tokens <= max(64, max(len(g.prompt_ids) + len(c) for g in groups for c in g.completion_ids))
    assert a.loss == pytest.approx(b.loss, abs=1e-5)
    for p, q in zip(big.model.parameters(), small.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_micro_batches_never_exceed_the_token_budget(tokenizer):
    trainer = _trainer(tokenizer, micro_batch_tokens=128)
    groups, rewards = _groups(trainer)
    rows = [(Row(g.prompt_ids, c, 0.0), 1.0) for g in groups for c in g.completion_ids]
    plan = trainer._micro_batches(rows)
    assert sum(len(m) for m in plan) == len(rows)
    for micro in plan:
        ids, _, _ = trainer._pack([row for row, _ in micro])
        assert ids.numel() <= 128 or len(micro) == 1  # only a single over-long sample may exceed it


def test_clip_acts_from_the_second_optimiser_step(tokenizer):
    trainer = _trainer(tokenizer, minibatch_size=4, num_iterations=2, learning_rate=0.2)
    groups, rewards = _groups(trainer)
    ratios = []
    original = trainer.token_logps

    def watch(model, ids, attention, mask):
        out = original(model, ids, attention, mask)
        if torch.is_grad_enabled():
            ratios.append(out.detach())
        return out

    old = trainer._logps_no_grad(trainer.model, [trainer._micro_batches(
        [(Row(g.prompt_ids, c, 0.0), 1.0) for g in groups for c in g.completion_ids][i:i + 4]) for i in range(0, 12, 4)])
    trainer.token_logps = watch
    result = trainer.step(groups, rewards)
    assert result.optimizer_steps == 6  # 3 minibatches x 2 epochs
    assert torch.allclose(ratios[0], old[(0, 0)], atol=1e-6)  # first step: the sampling policy itself
    assert not torch.allclose(ratios[1], old[(1, 0)], atol=1e-4)  # the policy moved: ratio != 1
    assert result.ratio_range[0] < 1.0 < result.ratio_range[1]
    assert result.clipped > 0  # with this learning rate some tokens leave [1 - eps, 1 + eps_high]


def test_single_on_policy_step_never_clips(tokenizer):
    trainer = _trainer(tokenizer, learning_rate=0.2)
    groups, rewards = _groups(trainer)
    result = trainer.step(groups, rewards)
    assert result.optimizer_steps == 1
    assert result.clipped == 0
    assert result.ratio_range == (1.0, 1.0)


def test_empty_and_flat_rounds_are_skipped(tokenizer):
    trainer = _trainer(tokenizer)
    assert trainer.step([], []).skipped
    groups, _ = _groups(trainer, 1)
    before = copy.deepcopy(trainer.model.state_dict())
    assert trainer.step(groups, [[0.5] * 4]).skipped
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
