"""Problems any peer can rebuild from a reference, and peers that never share a stream."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from desktop.codezero.generator import GENERATOR_VERSION
from desktop.codezero.problems import load_problems
from desktop.codezero.refs import ProblemResolver, UnknownRef, generated_ref
from desktop.node.main import peer_stream
from desktop.node.sapo import choose_external, order_external
from desktop.swarm.records import batch_id_of
from desktop.swarm.types import PeerRollouts

A = "QmRJqhA1eRZsQM99tdaU7uSG9jsRiY1qQeRXLrM31STAZN"
B = "QmbfezfUT8ZMjpCBFNXBXHnAHU1G2TMF49uWUNSycAQhBC"


def test_a_generated_problem_is_rebuilt_from_its_reference():
    source = load_problems("generated", seed=peer_stream(42, A)[0])
    resolver = ProblemResolver()
    for index in range(20):
        mine = source.next(index)
        assert mine.ref[:2] == ("gen", GENERATOR_VERSION)
        theirs = resolver.resolve(list(mine.ref))  # as it arrives off the wire
        assert (theirs.question, theirs.tests, theirs.id) == (mine.question, mine.tests, mine.id)


def test_humaneval_and_unknown_references():
    resolver = ProblemResolver()
    he = resolver.resolve(("humaneval", "HumanEval/12"))
    assert he.id == "HumanEval/12"
    assert "check(" in he.tests
    for ref, reason in [(("gen", GENERATOR_VERSION + 1, 0, 5), "generator_version"),
                        (("gen", GENERATOR_VERSION, 9, 5), "bad_ref"),
                        (("humaneval", "HumanEval/9999"), "bad_ref"),
                        (("mbpp", "some-set:test", "mbpp/3"), "not_loaded"),
                        (("proposer", A, 3, "p1"), "proposer_unknown"),
                        (("what",), "bad_ref")]:
        with pytest.raises(UnknownRef) as info:
            resolver.resolve(ref)
        assert info.value.reason == reason


def test_two_peers_draw_different_problems_and_sample_different_completions():
    (seed_a, torch_a), (seed_b, torch_b) = peer_stream(42, A), peer_stream(42, B)
    assert peer_stream(42, A) == (seed_a, torch_a)  # stable across restarts
    pa, pb = load_problems("generated", seed=seed_a), load_problems("generated", seed=seed_b)
    assert [pa.next(i).id for i in range(10)] != [pb.next(i).id for i in range(10)]
    from desktop.node.grpo import GRPOSettings, GRPOTrainer
    from desktop.node.models import load_model

    model, tok = load_model("tiny:tiny")
    trainer = GRPOTrainer(model, tok, GRPOSettings(num_generations=4, max_new_tokens=24))
    prompt = [trainer.encode_prompt([{"role": "user", "content": pa.next(0).question}])]
    texts = []
    for seed in (torch_a, torch_b):
        torch.manual_seed(seed)
        texts.append(trainer.generate(["q"], prompt)[0].texts)
    assert texts[0] != texts[1]


def _rollouts(peer, ref, question, rewards, completions=None):
    return PeerRollouts(peer_id=peer, round=1, ref=ref, batch_id=batch_id_of(question),
                        completions=completions or [f"c{i}" for i in range(len(rewards) or 2)], rewards=rewards)


def test_external_groups_are_tried_most_promising_first():
    flat = _rollouts(A, ("gen", 1, 0, 1), "q1", [0.2, 0.2])
    none = _rollouts(A, ("gen", 1, 0, 2), "q2", [])
    spread = _rollouts(B, ("gen", 1, 0, 3), "q3", [1.2, 0.2])
    dup = _rollouts(B, ("gen", 1, 0, 3), "q3", [1.2, 0.2])
    single = _rollouts(B, ("gen", 1, 0, 4), "q4", [1.0], completions=["only one"])
    ordered = order_external([flat, none, spread, dup, single], random.Random(0))
    assert ordered == [spread, none, flat]


def test_choose_external_judges_here_and_refuses_what_it_cannot_rebuild():
    source = load_problems("generated", seed="x")
    real = source.next(0)
    good = _rollouts(A, real.ref, real.question, [1.2, 0.2])
    liar = _rollouts(B, real.ref, "a different question", [1.2, 0.2])
    alien = _rollouts(B, ("gen", GENERATOR_VERSION + 7, 0, 1), "q", [1.2, 0.2])
    judged_here = []

    def judge(rollouts, problem):
        judged_here.append(rollouts.peer_id)
        return [1.0, 0.0] if rollouts is good else [0.2, 0.2]

    refused = Counter()
    chosen, judged = choose_external([good, liar, alien], 2, resolve=ProblemResolver().resolve, judge=judge,
                                     rng=random.Random(1), refused=refused)
    assert [c.rollouts for c in chosen] == [good]
    assert chosen[0].rewards == [1.0, 0.0]  # our verdict, not theirs
    assert refused == {"batch_id": 1, "generator_version": 1}
    assert judged_here == [A]  # nothing it could not rebuild was run


def test_choose_external_stops_judging_after_its_budget():
    source = load_problems("generated", seed="y")
    flat = [_rollouts(A, p.ref, p.question, []) for p in (source.next(i) for i in range(20))]
    calls = []
    chosen, judged = choose_external(flat, 2, resolve=ProblemResolver().resolve,
                                     judge=lambda r, p: calls.append(1) or [0.0, 0.0], rng=random.Random(0))
    assert chosen == []
    assert len(judged) == len(calls) == 6  # 2 * want + 2
