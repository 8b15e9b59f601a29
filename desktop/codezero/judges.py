"""Judges decide whether a candidate's code solves a problem: 1 if correct, else 0.

``ExecutionJudge`` (the default) runs the code and the problem's tests in the sandbox.
``LMJudge`` asks a frozen language model instead, as RL Swarm's CodeZero evaluator does; its
free-form answer is read by the tolerant :func:`parse_verdict`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
from collections import OrderedDict
from typing import Any, Protocol, runtime_checkable

from desktop.codezero.problems import Problem
from desktop.codezero.sandbox import SandboxLimits, SandboxResult, run_with_tests


@runtime_checkable
class Judge(Protocol):
    def judge(self, problem: Problem, code: str) -> int:
        """1 when ``code`` solves ``problem``, else 0."""
        ...


class ExecutionJudge:
    """Correct means: the problem's tests pass when run after the code, in the sandbox.

    Verdicts are remembered per (problem, code): a small model often samples the same answer
    several times in a group, and peers' rollouts repeat our own, so a verdict is run once.
    """

    def __init__(self, limits: SandboxLimits = SandboxLimits(), cache_size: int = 4096):
        self.limits = limits
        self.cache_size = cache_size
        self._verdicts: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()
        self.runs = 0  # sandbox runs actually made (cache misses)

    def run(self, problem: Problem, code: str) -> SandboxResult:
        """The full sandbox result, for callers that want to show why a solution failed."""
        return run_with_tests(code, problem.tests, limits=self.limits, context=problem.context)

    def judge(self, problem: Problem, code: str) -> int:
        key = hashlib.sha256("\0".join((problem.tests, problem.context, code)).encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            if key in self._verdicts:
                self._verdicts.move_to_end(key)
                return self._verdicts[key]
        verdict = 1 if self.run(problem, code).ok else 0
        with self._lock:
            self.runs += 1
            self._verdicts[key] = verdict
            while len(self._verdicts) > self.cache_size:
                self._verdicts.popitem(last=False)
        return verdict


# ---- reading a model's verdict ------------------------------------------------------------------
_FENCED_RE = re.compile(r"```[ \t]*(?:json)?[ \t]*\r?\n?(.*?)```", re.IGNORECASE | re.DOTALL)
_FALLBACK_RE = re.compile(r"""is_correct['"]?\s*[:=]\s*['"]?(true|false)""", re.IGNORECASE)
_MAX_LITERAL = 20_000  # longer spans are not a verdict; literal_eval on them only costs time
_MAX_SPANS = 64  # objects tried, last first: bounds the work on pathological text


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _find_verdict(obj: Any) -> bool | None:
    """``is_correct`` of a parsed object, also when nested (``{"result": {"is_correct": true}}``)."""
    if isinstance(obj, dict):
        if "is_correct" in obj:
            return _as_bool(obj["is_correct"])
        for value in obj.values():
            found = _find_verdict(value)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for value in obj:
            found = _find_verdict(value)
            if found is not None:
                return found
    return None


def _parse_object(text: str) -> bool | None:
    """A verdict from one JSON object or Python dict literal (never ``eval``)."""
    text = text.strip()
    if not text or len(text) > _MAX_LITERAL:
        return None
    try:
        return _find_verdict(json.loads(text))
    except ValueError:
        pass
    try:
        return _find_verdict(ast.literal_eval(text))
    except Exception:  # SyntaxError, ValueError, RecursionError, MemoryError...
        return None


def _brace_spans(text: str) -> list[str]:
    """Every balanced ``{...}`` substring, the one that closes last first, so a later object
    beats an earlier one and an enclosing object is tried before its parts. Quotes are not
    tracked: a wrong span just fails to parse."""
    spans, stack = [], []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            start = stack.pop()
            if i + 1 - start <= _MAX_LITERAL:  # slicing every nested span could take O(n^2) memory
                spans.append(text[start:i + 1])
    return spans[::-1]


def parse_verdict(text: str) -> bool | None:
    """True/False from a model's answer, or None when it states no verdict.

    Tried in order: fenced JSON (```json ... ```), a bare JSON object, a Python dict literal,
    then ``is_correct: true``-like text. Within a form the LAST verdict wins: models reason
    first and answer at the end.
    """
    if not isinstance(text, str):
        return None
    for block in reversed(_FENCED_RE.findall(text)):
        verdict = _parse_object(block)
        if verdict is not None:
            return verdict
    for span in _brace_spans(text)[:_MAX_SPANS]:
        verdict = _parse_object(span)
        if verdict is not None:
            return verdict
    matches = _FALLBACK_RE.findall(text)
    return matches[-1].lower() == "true" if matches else None


# ---- the language-model judge -------------------------------------------------------------------
PROMPT = """You are a strict judge of Python solutions. Decide whether the candidate solution \
solves the problem and passes the tests.

Problem:
{question}

Tests:
```python
{tests}
```

Candidate solution:
```python
{code}
```

Reply with JSON only: {{"is_correct": true}} or {{"is_correct": false}}."""


class LMJudge:
    """A frozen causal LM asked, greedily, whether the code is correct. Unreadable answer -> 0."""

    max_field_chars = 8000  # long code or tests are cut so the question still fits the context

    def __init__(self, model, tokenizer, max_new_tokens: int = 32):
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.last_output = ""  # the raw answer, for logs and debugging

    def build_prompt(self, problem: Problem, code: str) -> str:
        cut = self.max_field_chars
        text = PROMPT.format(question=problem.question[:cut], tests=problem.tests[:cut], code=code[:cut])
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                      add_generation_prompt=True, tokenize=False)
        return text

    def _generate_text(self, prompt: str) -> str:
        import torch  # lazily: judges are importable without torch

        tok, model = self.tokenizer, self.model
        model.eval()
        device = next(model.parameters()).device
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 pad_token_id=pad)
        return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    def judge(self, problem: Problem, code: str) -> int:
        self.last_output = self._generate_text(self.build_prompt(problem, code))
        return 1 if parse_verdict(self.last_output) is True else 0


def make_judge(name: str, **kw) -> Judge:
    """``"execution"`` (kwargs: limits) or ``"lm"`` (kwargs: model, tokenizer, max_new_tokens)."""
    key = (name or "").strip().lower()
    if key == "execution":
        return ExecutionJudge(**kw)
    if key == "lm":
        return LMJudge(**kw)
    raise ValueError(f"Unknown judge {name!r}: use 'execution' or 'lm'.")
