"""The GRPO objective against values worked out by hand."""

import math

import pytest
import torch

from desktop.node.grpo import group_advantages, grpo_loss


def _batch():
    ratios = torch.tensor([[1.5, 0.9, 1.1], [0.5, 1.2, 1.0]])
    logps = torch.log(ratios)
    old = torch.zeros_like(logps)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    return logps, old, adv, mask


def test_clipped_surrogate_matches_hand_computation():
    logps, old, adv, mask = _batch()
    # A=+1: ratio 1.5 clipped to 1.28 (eps_high), 0.9 and 1.1 inside -> -(1.28 + 0.9 + 1.1)
    # A=-1: ratio 0.5 clipped to 0.8 (eps) -> +0.8; 1.2 inside -> +1.2; third token is padding
    expected = (-1.28 - 0.9 - 1.1 + 0.8 + 1.2) / 5
    loss = grpo_loss(logps, old, adv, mask, epsilon=0.2, epsilon_high=0.28)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_kl_term_uses_k3_estimator_against_reference():
    logps, old, adv, mask = _batch()
    ref = torch.zeros_like(logps)
    beta = 0.1
    kl = [1 / r + math.log(r) - 1 for r in (1.5, 0.9, 1.1, 0.5, 1.2)]
    expected = ((-1.28 - 0.9 - 1.1 + 0.8 + 1.2) + beta * sum(kl)) / 5
    loss = grpo_loss(logps, old, adv, mask, epsilon=0.2, epsilon_high=0.28, beta=beta, ref_logps=ref)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_loss_is_clamped_per_token():
    logps = torch.zeros(1, 2)
    loss = grpo_loss(logps, logps, torch.tensor([50.0]), torch.ones(1, 2), epsilon=0.2, epsilon_high=0.28)
    assert loss.item() == pytest.approx(-10.0)


def test_on_policy_gradient_is_minus_advantage_per_token():
    logps = torch.zeros(2, 3, requires_grad=True)
    adv = torch.tensor([0.5, -2.0])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    grpo_loss(logps, logps.detach(), adv, mask, epsilon=0.2, epsilon_high=0.28).backward()
    expected = -(adv.unsqueeze(1) * mask) / 5
    assert torch.allclose(logps.grad, expected)


def test_group_advantages_normalise_within_the_group():
    a = group_advantages([1.0, 0.0])
    # mean 0.5, unbiased std sqrt(0.5): (1 - 0.5) / sqrt(0.5) = sqrt(0.5)
    assert a.tolist() == pytest.approx([math.sqrt(0.5), -math.sqrt(0.5)], rel=1e-5)
    assert group_advantages([0.3, 0.3, 0.3]).abs().sum().item() == 0.0
    assert group_advantages([2.0]).tolist() == [0.0]
