"""Per-round checkpoints: model, optimiser, round and RNG state, written atomically.

A checkpoint is one file ``round-NNNNNNNN.pt`` written to a temporary name and renamed into
place, so a node killed mid-write leaves the previous checkpoint intact. Only the newest few
are kept. On resume the newest file that loads is used; unreadable ones are reported, not fatal.
"""

from __future__ import annotations

import logging
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)
_NAME = re.compile(r"^round-(\d{8})\.pt$")


@dataclass
class Resumed:
    round: int          # the last completed round
    path: Path
    skipped: list[str]  # checkpoints that could not be read
    extra: dict = field(default_factory=dict)  # what the node saved beside the weights


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointStore:
    def __init__(self, directory: Path, keep: int = 2) -> None:
        self.directory = Path(directory)
        self.keep = max(1, keep)

    def _files(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            match = _NAME.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def save(self, round_number: int, model, optimizer, model_name: str, extra: dict | None = None) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"round-{round_number:08d}.pt"
        tmp = path.with_suffix(".pt.tmp")
        payload = {"format": 1, "round": round_number, "model_name": model_name,
                   "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "rng": rng_state(), "extra": extra or {}}
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        for _, old in self._files()[:-self.keep]:
            old.unlink(missing_ok=True)
        for stale in self.directory.glob("*.pt.tmp"):  # left by a node killed mid-write
            stale.unlink(missing_ok=True)
        return path

    def restore(self, model, optimizer, model_name: str) -> Resumed | None:
        """Load the newest readable checkpoint for ``model_name`` into model and optimiser."""
        skipped = []
        for round_number, path in reversed(self._files()):
            try:
                # weights_only=False: RNG states hold numpy arrays; the file is our own, in our data dir
                payload = torch.load(path, map_location="cpu", weights_only=False)
                if payload.get("model_name") != model_name:
                    skipped.append(f"{path.name} (model {payload.get('model_name')!r})")
                    continue
                model.load_state_dict(payload["model"])
                optimizer.load_state_dict(payload["optimizer"])
                set_rng_state(payload["rng"])
            except Exception as exc:  # a torn or foreign file must not stop the node
                log.warning("checkpoint %s unreadable: %s", path, exc)
                skipped.append(f"{path.name} (unreadable)")
                continue
            extra = payload.get("extra")
            return Resumed(round=round_number, path=path, skipped=skipped,
                           extra=extra if isinstance(extra, dict) else {})
        return None
