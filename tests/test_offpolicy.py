"""Other peers' completions in a GRPO step (desktop.node.offpolicy): which are learned from, how much
they weigh, their importance weights; and the step's policy-health figures, on a real tiny model."""

import copy
import math

import pytest
import torch

from desktop.node import offpolicy
from desktop.node.grpo import GRPOSettings, GRPOTrainer, Group
from desktop.node.health import PolicyWatch
from desktop.node.models import TINY_SIZES, build_tiny_model, load_tiny_tokenizer
from desktop.node.offpolicy import Row


@pytest.fixture(scope="module")
def tokenizer():
    return load_tiny_tokenizer()


def _trainer(tokenizer, **kw):
    torch.manual_seed(0)
    model = build_tiny_model(tokenizer, TINY_SIZES["tiny"], seed=0, warm=False)
    settings = GRPOSettings(**{"num_generations": 4, "max_new_tokens": 8, "learning_rate": 1e-2, **kw})
    trainer = GRPOTrainer(model, tokenizer, settings)
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=1.0)  # updates linear in the loss
    return trainer


def _groups(trainer):
    prompts = ["own problem", "a problem another peer solved"]
    ids = [trainer.encode_prompt([{"role": "user", "content": p}]) for p in prompts]
    torch.manual_seed(3)
    own, other = trainer.generate(prompts, ids)
    other.source = "QmOtherPeer"
    trainer.sampled_logps([other])  # what its publisher would have sent: here, our own probabilities
    return own, other


def test_which_external_rows_a_step_keeps():
    own_neg, ext_pos = Row([1], [2], -1.0), Row([1], [2], 0.5, external=True)
    ext_neg, ext_neg_mu = Row([1], [2], -0.5, external=True), Row([1], [2], -0.5, external=True, behaviour=[-0.1])
    assert offpolicy.keep(own_neg, "positive")  # own samples: always, whatever their sign
    assert offpolicy.keep(ext_pos, "positive") and not offpolicy.keep(ext_neg, "positive")
    assert offpolicy.keep(ext_neg, "as-own")
    assert offpolicy.keep(ext_neg_mu, "behaviour") and not offpolicy.keep(ext_neg, "behaviour")  # no mu: positive
    assert not offpolicy.keep(ext_neg_mu, "behaviour-positive")


def test_external_tokens_weigh_at_most_their_share():
    rows = [Row([1], [2] * 10, 1.0), Row([1], [2] * 30, 1.0, external=True), Row([1], [2] * 60, -1.0, external=True)]
    weights = offpolicy.token_weights(rows, share_cap=0.5)
    per_row = [w * len(r.completion_ids) for w, r in zip(weights, rows)]
    assert sum(per_row) == pytest.approx(1.0)
    assert per_row[1] + per_row[2] == pytest.approx(0.5)  # 90 % of the tokens, half of the weight
    assert weights[1] == weights[2]  # external tokens are equal among themselves
    uncapped = offpolicy.token_weights(rows, share_cap=None)
    assert all(w == pytest.approx(0.01) for w in uncapped)  # a plain token mean
    assert offpolicy.token_weights(rows[1:], share_cap=0.5) == pytest.approx([1 / 90, 1 / 90])  # nothing own: all
    under = offpolicy.token_weights([Row([1], [2] * 90, 1.0), Row([1], [2] * 10, 1.0, external=True)], share_cap=0.5)
    assert under == pytest.approx([0.01, 0.01])  # under the cap: untouched


def test_importance_weights_are_truncated_and_carry_no_gradient():
    old = torch.tensor([-0.1, -3.0, -1.0], requires_grad=True)
    mu = torch.tensor([-2.0, -0.1, -1.0])
    w = offpolicy.importance(old, mu)
    assert w.tolist() == pytest.approx([1.0, math.exp(-2.9), 1.0])  # capped at 1; improbable-for-us: tiny
    assert not w.requires_grad


def test_positive_mode_leaves_below_average_external_completions_out(tokenizer):
    trainer = _trainer(tokenizer)
    own, other = _groups(trainer)
    rewards = [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]
    result = trainer.step([own, other], rewards, share_cap=0.5)
    assert result.external_dropped == 2  # the external group's two below-average completions
    assert result.external_share == pytest.approx(0.5, abs=1e-6) or result.external_share < 0.5
    assert result.own_logp is not None and result.own_logp < 0 and result.external_logp is not None
    as_own = _trainer(tokenizer, external_samples="as-own").step([own, other], rewards, share_cap=0.5)
    assert as_own.external_dropped == 0


def test_the_step_is_the_weighted_objective_worked_out_by_hand(tokenizer):
    """One SGD step's change of the parameters equals the gradient of the objective written out:
    own tokens' mean and external tokens' mean, mixed at the share cap."""
    trainer = _trainer(tokenizer, external_samples="as-own", max_grad_norm=1e9)  # no clipping: the bare gradient
    own, other = _groups(trainer)
    rewards = [[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]]
    reference = copy.deepcopy(trainer.model)
    trainer.step([own, other], rewards, share_cap=0.25)
    # by hand, on the copy: on-policy, so the objective's gradient is -A * grad(logp) per token
    from desktop.node.grpo import group_advantages

    def mean_term(group, rs):
        adv = group_advantages(rs)
        total, count = 0.0, 0
        for c, a in zip(group.completion_ids, adv):
            ids = torch.tensor([group.prompt_ids + c])
            logits = reference(input_ids=ids).logits[0, len(group.prompt_ids) - 1:-1].float()
            lp = torch.log_softmax(logits, -1).gather(1, torch.tensor(c).unsqueeze(1)).squeeze(1)
            total = total + (-a * lp).sum()
            count += len(c)
        return total, count

    own_sum, own_n = mean_term(own, rewards[0])
    ext_sum, ext_n = mean_term(other, rewards[1])
    share = min(ext_n / (own_n + ext_n), 0.25)
    objective = (1 - share) * own_sum / own_n + share * ext_sum / ext_n
    objective.backward()
    for (name, p), q in zip(reference.named_parameters(), trainer.model.parameters()):
        expected = p.detach() - (p.grad if p.grad is not None else 0)
        assert torch.allclose(q.detach(), expected, atol=2e-5), name


def test_behaviour_mode_weighs_external_tokens_by_our_over_their_probability(tokenizer):
    trainer = _trainer(tokenizer, external_samples="behaviour")
    own, other = _groups(trainer)
    # the publisher was far surer of its tokens than we are: our/their ratio is tiny, so they barely count
    sure = copy.deepcopy(other)
    sure.logps = [[0.0] * len(c) for c in sure.completion_ids]
    unsure = copy.deepcopy(other)
    unsure.logps = [[-50.0] * len(c) for c in unsure.completion_ids]  # capped at 1: as own
    rewards = [[0.0] * 4, [1.0, 0.0, 1.0, 0.0]]
    start = copy.deepcopy(trainer.model.state_dict())

    def moved(group) -> float:
        trainer.model.load_state_dict(start)
        trainer.step([own, group], rewards)
        return sum(float((trainer.model.state_dict()[k] - v).abs().sum()) for k, v in start.items())

    assert moved(sure) < moved(unsure)


def test_a_collapsing_policy_is_said_once_and_its_recovery_noticed():
    said = []

    class Sink:
        def emit(self, kind, **fields):
            said.append(fields["message"])

    watch = PolicyWatch(Sink())
    for r, value in enumerate([-0.3] * 10 + [-1.2] * 10 + [-2.5] * 10 + [-0.3] * 10):  # less sure, then noise, then back
        watch.observe(r, value)
        watch.observe(r, None)  # a round without a step changes nothing
    assert len(said) == 1 and "spreading out" in said[0] and said[0].startswith("round 2")  # in the noise, not before
    assert not watch.collapsing
