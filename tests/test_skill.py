"""Skill on held-out problems (desktop.node.skill): the same set for every peer, never in a peer's
training stream, answered greedily and judged in the sandbox."""

import torch

from desktop.codezero.judges import ExecutionJudge
from desktop.codezero.problems import load_problems
from desktop.codezero.rewards import codezero_reward
from desktop.node.grpo import GRPOSettings, GRPOTrainer
from desktop.node.main import peer_stream
from desktop.node.models import build_tiny_model, load_tiny_tokenizer
from desktop.node.runner import Node
from desktop.node.skill import SkillCheck, held_out

A = "QmRJqhA1eRZsQM99tdaU7uSG9jsRiY1qQeRXLrM31STAZN"
B = "QmbfezfUT8ZMjpCBFNXBXHnAHU1G2TMF49uWUNSycAQhBC"


def test_every_peer_holds_out_the_same_problems_and_never_trains_on_them():
    for spec in ("generated:1", "generated:0,1,2", "humaneval"):
        held, streams = [], []
        for peer in (A, B):
            source = load_problems(spec, seed=peer_stream(42, peer)[0], generated_pool=16 if "gen" in spec else None)
            tests, train = held_out(source, 16)
            held.append([p.question for p in tests])
            streams.append({train.next(i).question for i in range(400)})
        assert held[0] == held[1] and len(held[0]) == 16 and len(set(held[0])) == 16, spec
        assert not set(held[0]) & (streams[0] | streams[1]), spec  # no peer ever trains on one of them
    assert held_out(load_problems("generated:1", seed="x"), 0)[0] == []


def test_skill_is_the_greedy_answers_pass_rate():
    torch.manual_seed(0)
    tok = load_tiny_tokenizer()
    trainer = GRPOTrainer(build_tiny_model(tok), tok, GRPOSettings(num_generations=4, max_new_tokens=96))
    tests, _ = held_out(load_problems("generated:1", seed="x"), 6)
    judge = ExecutionJudge()

    def judge_texts(texts, limits, problem):
        return [codezero_reward(t, problem, judge, hit_token_limit=h) for t, h in zip(texts, limits)]

    check = SkillCheck(trainer, tests, 10, Node.messages, judge_texts)
    assert [check.due(s) for s in (0, 5, 10, 20)] == [True, False, True, True]
    first, again = check.run(), check.run()
    assert first["problems"] == 6 and 0 <= first["pass_rate"] <= 1 and -1.2 <= first["reward"] <= 1.2
    assert (first["pass_rate"], first["reward"]) == (again["pass_rate"], again["reward"])  # greedy: the same answers
    greedy = trainer.generate([p.question for p in tests], [trainer.encode_prompt(Node.messages(p)) for p in tests],
                              greedy=True)
    solved = sum(judge_texts(g.texts, g.hit_limit, p)[0] > 0.5 for g, p in zip(greedy, tests))
    assert first["pass_rate"] == round(solved / 6, 4)
