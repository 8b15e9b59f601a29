"""CodeZero rewards and judges: every reward branch, code extraction, verdict parsing, and both
judges for real (the sandbox, and a tiny randomly initialised Qwen2 model)."""

from __future__ import annotations

import time

import pytest

from desktop.codezero.judges import ExecutionJudge, Judge, LMJudge, make_judge, parse_verdict
from desktop.codezero.problems import Problem
from desktop.codezero.rewards import FENCE_RE, codezero_reward, extract_python
from desktop.codezero.sandbox import SandboxResult

ADD = Problem(id="add", question="Write add(a, b) returning the sum of a and b.",
              tests="assert add(2, 3) == 5\nassert add(-1, 1) == 0\n", entry_point="add")


class FixedJudge:
    """Returns a set verdict and records what it was asked."""

    def __init__(self, verdict: int):
        self.verdict = verdict
        self.calls: list[tuple[Problem, str]] = []

    def judge(self, problem: Problem, code: str) -> int:
        self.calls.append((problem, code))
        return self.verdict


# ---- the reward ---------------------------------------------------------------------------------
@pytest.mark.parametrize("completion", [None, 42, 1.5, b"```python\nx = 1\n```", ["```python\nx\n```"],
                                        {"text": "hi"}])
@pytest.mark.parametrize("hit", [False, True])
def test_non_text_is_minus_1_2(completion, hit):
    judge = FixedJudge(1)
    assert codezero_reward(completion, ADD, judge, hit_token_limit=hit) == pytest.approx(-1.2)
    assert judge.calls == []


@pytest.mark.parametrize("completion", [
    "", "def add(a, b): return a + b", "```\ndef add(a, b): return a + b\n```",
    "```js\nconst x = 1\n```", "```python\ndef add(a, b): return a + b",  # cut off: never closed
    "```python def add(a, b): return a + b```", "```pythonic\nx = 1\n```",
])
@pytest.mark.parametrize("hit", [False, True])
def test_no_python_fence_is_minus_1(completion, hit):
    judge = FixedJudge(1)
    assert codezero_reward(completion, ADD, judge, hit_token_limit=hit) == pytest.approx(-1.0)
    assert judge.calls == []


@pytest.mark.parametrize("verdict,hit,expected", [(1, False, 1.2), (1, True, 0.8), (0, False, 0.2),
                                                  (0, True, -0.2)])
def test_judged_reward_with_stop_bonus(verdict, hit, expected):
    judge = FixedJudge(verdict)
    completion = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    assert codezero_reward(completion, ADD, judge, hit_token_limit=hit) == pytest.approx(expected)
    assert judge.calls == [(ADD, "def add(a, b):\n    return a + b\n")]


def test_boolean_verdicts_count_like_ints():
    completion = "```python\nx = 1\n```"
    assert codezero_reward(completion, ADD, FixedJudge(True), hit_token_limit=False) == pytest.approx(1.2)
    assert codezero_reward(completion, ADD, FixedJudge(False), hit_token_limit=True) == pytest.approx(-0.2)


# ---- extracting code ----------------------------------------------------------------------------
@pytest.mark.parametrize("completion,code", [
    ("```python\nprint(1)\n```", "print(1)\n"),
    ("text\n```python\nfirst()\n```\nand\n```python\nsecond()\n```", "first()\n"),  # the first block
    ("```Python\nx = 1\n```", "x = 1\n"),
    ("```python3\nx = 1\n```", "x = 1\n"),
    ("```python   \r\nx = 1\r\n```", "x = 1\r\n"),
    ("```  python\nx = 1\n```", "x = 1\n"),
    ("```python\n```", ""),  # an empty block is still a fence: the judge says 0
    ("```\nnot python\n```\n```python\nyes = 1\n```", "yes = 1\n"),
    ("```python\ns = 'a'\n``` trailing", "s = 'a'\n"),
])
def test_extract_python(completion, code):
    assert extract_python(completion) == code


@pytest.mark.parametrize("completion", ["no code", "```py\nx\n```", "```python", "```python x```", None, 3])
def test_extract_python_none(completion):
    assert extract_python(completion) is None


def test_fence_re_finds_all_blocks():
    text = "```python\na\n```\n```python\nb\n```"
    assert FENCE_RE.findall(text) == ["a\n", "b\n"]


# ---- parsing a verdict --------------------------------------------------------------------------
@pytest.mark.parametrize("text,verdict", [
    ('```json\n{"is_correct": true}\n```', True),
    ('```json\n{"is_correct": false}\n```', False),
    ('```JSON\n{ "is_correct" :false }\n```', False),
    ('```\n{"is_correct": true}\n```', True),
    ('Reasoning... {"is_correct": true}', True),
    ('{"is_correct": false, "reason": "off by one"}', False),
    ('{\n   "is_correct"   :\n   true\n}', True),
    ('{"verdict": {"is_correct": true, "why": {"k": 1}}}', True),  # nested
    ('{"is_correct": "false"}', False),
    ("{'is_correct': True}", True),
    ("{'is_correct': False, 'note': 'fails on []'}", False),
    ('first {"is_correct": true} then, correcting myself: {"is_correct": false}', False),  # last wins
    ('is_correct: true', True),
    ('"is_correct" = FALSE', False),
    ("The answer: 'is_correct': 'True' (broken json", True),
    ('```json\n{"is_correct": tru\n```', None),
    ("", None),
    ("I think the code is fine.", None),
    ("{not json at all}", None),
    ('{"is_correct": null}', None),
    ('{"is_correct": 1}', None),
    ("}{ } {{", None),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) is verdict


def test_parse_verdict_never_evaluates_code(tmp_path):
    marker = tmp_path / "ran"
    text = "{'is_correct': __import__('pathlib').Path(%r).touch()}" % str(marker)
    assert parse_verdict(text) is None
    assert not marker.exists()


def test_parse_verdict_is_fast_on_pathological_text():
    t0 = time.monotonic()
    assert parse_verdict("{" * 50_000 + "}" * 50_000) is None
    assert parse_verdict(None) is None
    assert time.monotonic() - t0 < 5


# ---- the execution judge ------------------------------------------------------------------------
@pytest.mark.slow
def test_execution_judge_on_real_solutions():
    judge = ExecutionJudge()
    assert isinstance(judge, Judge)
    assert judge.judge(ADD, "def add(a, b):\n    return a + b\n") == 1
    assert judge.judge(ADD, "def add(a, b):\n    return a * b\n") == 0
    assert judge.judge(ADD, "def add(a, b):\n    raise SystemExit(3)\n") == 0
    # leaving before the tests run must not pass (reward hacking)
    assert judge.judge(ADD, "import sys\nsys.exit(0)\n") == 0
    assert judge.judge(ADD, "import os\nos._exit(0)\n") == 0
    assert judge.judge(ADD, "def add(a, b):\n    return a + b\nraise SystemExit\n") == 0
    result = judge.run(ADD, "def add(a, b):\n    return a - b\n")
    assert isinstance(result, SandboxResult)
    assert "AssertionError" in result.stderr


def test_reward_end_to_end_with_execution_judge():
    judge = make_judge("execution")
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return 0\n```"
    assert codezero_reward(good, ADD, judge, hit_token_limit=False) == pytest.approx(1.2)
    assert codezero_reward(bad, ADD, judge, hit_token_limit=True) == pytest.approx(-0.2)


def test_make_judge_rejects_unknown_names():
    with pytest.raises(ValueError):
        make_judge("oracle")


# ---- the language-model judge -------------------------------------------------------------------
def _bpe_tokenizer():
    """A small byte-level BPE tokenizer trained here, for when no shipped one is available."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [ADD.question, ADD.tests, '{"is_correct": true}', '{"is_correct": false}',
              "def add(a, b):\n    return a + b\n", "Reply with JSON only."]
    tok.train_from_iterator(corpus * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def _shipped_tokenizer():
    try:
        from desktop.node.models import load_tiny_tokenizer
    except ImportError:
        pytest.skip("desktop.node.models has no load_tiny_tokenizer")
    return load_tiny_tokenizer()


@pytest.fixture(params=["shipped", "bpe"])
def tiny_lm(request):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tok = _shipped_tokenizer() if request.param == "shipped" else _bpe_tokenizer()
    config = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, intermediate_size=64,
                                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return transformers.Qwen2ForCausalLM(config), tok


def test_lm_judge_runs_a_real_model(tiny_lm):
    model, tok = tiny_lm
    judge = make_judge("lm", model=model, tokenizer=tok, max_new_tokens=8)
    assert isinstance(judge, LMJudge)
    assert isinstance(judge, Judge)
    before = [p.detach().clone() for p in model.parameters()]
    verdict = judge.judge(ADD, "def add(a, b):\n    return a + b\n")
    assert verdict in (0, 1)
    assert isinstance(judge.last_output, str)
    assert verdict == (1 if parse_verdict(judge.last_output) is True else 0)
    assert all((a == b.detach()).all() for a, b in zip(before, model.parameters()))  # frozen
    # greedy decoding: the same question gets the same answer
    first = judge.last_output
    judge.judge(ADD, "def add(a, b):\n    return a + b\n")
    assert judge.last_output == first


def test_lm_judge_prompt_carries_problem_tests_and_code(tiny_lm):
    model, tok = tiny_lm
    prompt = LMJudge(model, tok).build_prompt(ADD, "def add(a, b):\n    return a + b\n")
    assert ADD.question in prompt
    assert "assert add(2, 3) == 5" in prompt
    assert "return a + b" in prompt
    assert '{"is_correct": true}' in prompt


class ForcedLMJudge(LMJudge):
    """The model's answer is fixed, to test how an answer becomes a verdict."""

    def __init__(self, model, tokenizer, answer: str):
        super().__init__(model, tokenizer)
        self.answer = answer

    def _generate_text(self, prompt: str) -> str:
        return self.answer


@pytest.mark.parametrize("answer,verdict", [
    ('```json\n{"is_correct": true}\n```', 1),
    ('```json\n{"is_correct": false}\n```', 0),
    ("{'is_correct': True}", 1),
    ("no idea", 0),
    ("", 0),
])
def test_lm_judge_verdict_from_forced_answer(tiny_lm, answer, verdict):
    model, tok = tiny_lm
    judge = ForcedLMJudge(model, tok, answer)
    assert judge.judge(ADD, "def add(a, b):\n    return a + b\n") == verdict
    completion = "```python\ndef add(a, b):\n    return a + b\n```"
    expected = verdict + 0.2
    assert codezero_reward(completion, ADD, judge, hit_token_limit=False) == pytest.approx(expected)
