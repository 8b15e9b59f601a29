"""Hugging Face Hub downloads for the node: progress callbacks, offline mode, clear errors."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import (GatedRepoError, HFValidationError, HfHubHTTPError, IncompleteSnapshotError,
                                    LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)
from tqdm.std import tqdm as _std_tqdm


log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict], None]


class ModelLoadError(RuntimeError):
    """A model could not be loaded. ``str(err)`` is a complete message fit to show a user."""


# ---- download progress ------------------------------------------------------------------------
class _NullFile:
    def write(self, _s: str) -> int:
        return 0

    def flush(self) -> None:
        pass


_HUB_TRANSFER_LABEL = "Downloading bytes"  # huggingface_hub's network-bytes bar


def progress_tqdm(model: str, callback: ProgressCallback | None,
                  min_interval: float = 0.25) -> type[_std_tqdm]:
    """A tqdm class for ``snapshot_download(tqdm_class=...)`` that prints nothing and reports
    byte progress as ``{"model", "file", "downloaded", "total"}`` dicts: at most one per
    ``min_interval`` across all its bars, plus a final one when each bar closes.

    ``file`` is the bar's label. huggingface_hub 1.x+ aggregates every file into one
    "bytes written" bar (total = sum of file sizes, so that is what gets reported) and one
    network bar whose total is a guess; the latter is skipped so consumers see one series."""
    lock = threading.Lock()
    last_emit = [float("-inf")]  # the first update always reports

    class ProgressTqdm(_std_tqdm):
        monitor_interval = 0  # no tqdm monitor thread

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub's own tqdm takes a group name
            kwargs["file"], kwargs["disable"] = _NullFile(), False
            self._reported_final = False
            self._skip = str(kwargs.get("desc") or "").startswith(_HUB_TRANSFER_LABEL)
            super().__init__(*args, **kwargs)

        def _emit(self, final: bool) -> None:
            if callback is None or getattr(self, "unit", "it") != "B" or self._skip:
                return  # file-count bars carry no byte progress
            now = time.monotonic()
            with lock:
                if not final and now - last_emit[0] < min_interval:
                    return
                last_emit[0] = now
            label = (self.desc or "").rstrip(": ").strip() or model
            callback({"model": model, "file": label, "downloaded": int(self.n),
                      "total": int(self.total) if self.total else None})

        def update(self, n: float | None = 1) -> bool | None:
            out = super().update(n)
            self._emit(final=False)
            return out

        def close(self) -> None:
            if not self._reported_final and hasattr(self, "n"):
                self._reported_final = True
                self._emit(final=True)
            super().close()

    return ProgressTqdm


# ---- loading ----------------------------------------------------------------------------------
def _hub_offline() -> bool:
    """Read at call time: huggingface_hub freezes HF_HUB_OFFLINE when it is imported."""

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(
        (f or "").strip().lower() in {"1", "true", "yes", "on"} for f in flags)


# Weights as safetensors plus configs and tokenizer files; skips .bin/.gguf/onnx duplicates.
_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def download_model(repo_id: str, *, cache_dir: Path | None = None,
                   progress: ProgressCallback | None = None) -> Path:
    """Fetch (or find cached) a Hub snapshot; raises ``ModelLoadError`` with a readable reason."""

    offline = _hub_offline()
    try:
        folder = snapshot_download(
            repo_id, cache_dir=str(cache_dir) if cache_dir else None,
            allow_patterns=_ALLOW_PATTERNS, local_files_only=offline,
            tqdm_class=progress_tqdm(repo_id, progress))
    except HFValidationError as err:
        raise ModelLoadError(f"{repo_id!r} is neither an existing model directory nor a valid "
                             "Hugging Face model id (like 'Qwen/Qwen2.5-Coder-0.5B-Instruct').") from err
    except IncompleteSnapshotError as err:
        raise ModelLoadError(f"Model {repo_id!r} is only partly downloaded and the Hugging Face Hub "
                             "cannot be reached to finish it. Connect to the internet and retry.") from err
    except LocalEntryNotFoundError as err:
        if offline:
            raise ModelLoadError(f"Model {repo_id!r} is not in the local cache and offline mode is on "
                                 "(HF_HUB_OFFLINE). Go online once to download it, or choose a "
                                 "tiny:* model.") from err
        raise ModelLoadError(f"Could not reach the Hugging Face Hub to download {repo_id!r}, and it is "
                             "not cached. Check the internet connection (or proxy) and retry.") from err
    except GatedRepoError as err:
        raise ModelLoadError(f"Model {repo_id!r} is gated: accept its licence on huggingface.co and "
                             "log in (HF_TOKEN) before downloading it.") from err
    except RepositoryNotFoundError as err:
        raise ModelLoadError(f"Model {repo_id!r} was not found on the Hugging Face Hub. Check the "
                             "name; private models need HF_TOKEN.") from err
    except RevisionNotFoundError as err:
        raise ModelLoadError(f"Model {repo_id!r} has no 'main' revision on the Hugging Face Hub.") from err
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", "?")
        raise ModelLoadError(f"The Hugging Face Hub refused the download of {repo_id!r} "
                             f"(HTTP {status}). Retry later.") from err
    except Exception as err:  # disk full, permissions, proxy or mid-transfer network errors
        raise ModelLoadError(f"Downloading {repo_id!r} failed: {first_line(err)}") from err
    return Path(folder)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{err.__class__.__name__}: {text.splitlines()[0]}" if text else err.__class__.__name__


