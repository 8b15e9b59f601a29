"""How a peer's completions become a group this peer trains on: the publisher's own tokens and
log-probs when it runs the same model (and they decode to the text that is judged), else its text
re-tokenised here, with the publisher's word on which completions stopped on their own."""

from __future__ import annotations

import pytest
import torch

from desktop.codezero.judges import ExecutionJudge
from desktop.codezero.problems import load_problems
from desktop.events import EventSink
from desktop.node.checkpoint import CheckpointStore
from desktop.node.grpo import GRPOSettings, GRPOTrainer, Group
from desktop.node.models import TINY_SIZES, build_tiny_model, load_tiny_tokenizer
from desktop.node.runner import Game, Node
from desktop.swarm.records import batch_id_of, decode_rollouts, encode_rollouts, fit_items, make_item
from desktop.swarm.types import PeerRollouts

PEER = "QmbfezfUT8ZMjpCBFNXBXHnAHU1G2TMF49uWUNSycAQhBC"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer = load_tiny_tokenizer()
    model = build_tiny_model(tokenizer, TINY_SIZES["tiny"])
    trainer = GRPOTrainer(model, tokenizer, GRPOSettings(num_generations=4, max_new_tokens=24))
    problems = load_problems("generated:1", seed="t")
    return Node(trainer=trainer, model_name="tiny:tiny", game=Game(problems, ExecutionJudge(), local_groups=2),
                sink=EventSink(None), checkpoints=CheckpointStore(tmp_path_factory.mktemp("ck")))


def _published(node, model="tiny:tiny", tamper=None):
    """A group as another peer running ``model`` publishes it, through the record codec."""
    problem = node.game.problems.next(0)
    prompt = node.trainer.encode_prompt(node.messages(problem))
    torch.manual_seed(7)
    group = node.trainer.generate([problem.question], [prompt])[0]
    node.trainer.sampled_logps([group])
    texts = [tamper(t) for t in group.texts] if tamper else group.texts
    item = make_item(problem.ref, problem.question, texts, [1.0, 0.0, 0.0, 0.0],
                     stopped=[not h for h in group.hit_limit], tokens=group.completion_ids, logps=group.logps)
    record = decode_rollouts(encode_rollouts(PEER, 1, 0, model, fit_items([item])))
    i = record.items[0]
    return problem, group, PeerRollouts(PEER, 1, i.ref, i.batch_id, i.completions, i.rewards, record.model, i.stopped,
                                        i.tokens, i.logps)


def test_the_same_model_trains_on_the_publishers_own_tokens_and_log_probs(node):
    problem, sent, rollouts = _published(node)
    got = node._external_group(rollouts, problem)
    assert got.completion_ids == sent.completion_ids and got.hit_limit == sent.hit_limit
    assert got.external and got.logps is not None
    for mine, theirs in zip(got.logps, sent.logps):
        assert mine == pytest.approx(theirs, abs=6e-4)  # milli-nats on the wire


@pytest.mark.parametrize("case", ["another model", "tokens that do not say the text"])
def test_otherwise_the_text_is_what_is_trained_on(node, case):
    if case == "another model":
        problem, sent, rollouts = _published(node, model="Qwen/Qwen2.5-Coder-0.5B-Instruct")
    else:
        problem, sent, rollouts = _published(node, tamper=lambda t: t + " # and something else")
    got = node._external_group(rollouts, problem)
    assert got.logps is None  # no behaviour probabilities for what was not sampled as such
    tok = node.trainer.tokenizer
    assert [tok.decode(ids, skip_special_tokens=True) for ids in got.completion_ids] == [
        tok.decode(tok(t, add_special_tokens=False)["input_ids"][:24], skip_special_tokens=True) for t in rollouts.completions]


def test_a_completion_cut_at_the_token_limit_is_never_taken_for_one_that_stopped(node):
    """The re-tokenising bug: a completion sampled to the publisher's token limit may re-tokenise
    shorter; then an end token was added and it was judged +0.2 (stopped) instead of -0.2."""
    tok = node.trainer.tokenizer
    text = "```python\ndef f(x):\n    return x\n```"  # short: re-tokenised, well under the limit
    before = Group.from_text(tok, "q", [1], [text], 24, source=PEER)  # a v2 record: no word on stopping
    assert not before.hit_limit[0] and before.completion_ids[0][-1] == tok.eos_token_id
    cut = Group.from_text(tok, "q", [1], [text], 24, source=PEER, stopped=[False])
    assert cut.hit_limit == [True] and tok.eos_token_id not in cut.completion_ids[0]
    problem = node.game.problems.next(0)
    rollouts = PeerRollouts(PEER, 1, problem.ref, batch_id_of(problem.question), [text, text], [], "other-model",
                            stopped=[False, True])
    group = node._external_group(rollouts, problem)
    assert group.hit_limit == [True, False]
    rewards = node._judge_texts(rollouts.completions, group.hit_limit, problem)
    assert rewards[0] == pytest.approx(rewards[1] - 0.4)  # -0.2 for the cut one, +0.2 for the stopped one
