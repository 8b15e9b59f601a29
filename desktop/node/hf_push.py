"""Optional push of the trained model to the Hugging Face hub after each round.

Only when ``hf.push`` is on and a write token is in the configured environment variable. Runs in
a background thread so training never waits for the network; failures are logged and reported
as a ``warning`` event, never fatal. The token never reaches a log line (see desktop.utils.logs).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading

from desktop.utils.logs import redact


log = logging.getLogger(__name__)


def repo_name(hf_user: str, model_name: str, peer_name: str) -> str:
    """``<hf user>/<model basename>-Gensyn-Swarm-<animal-name>``, as rl-swarm names it."""
    base = model_name.rstrip("/").split("/")[-1].replace(":", "-")
    return f"{hf_user}/{base}-Gensyn-Swarm-{peer_name.replace(' ', '-')}"


class HubPusher:
    def __init__(self, token: str, user: str | None, model_name: str, peer_name: str, trainer, sink,
                 endpoint: str | None = None) -> None:
        self._token = token
        self._endpoint = endpoint
        self._user = user
        self.model_name = model_name
        self.peer_name = peer_name
        self.trainer = trainer
        self.sink = sink
        self._busy = threading.Lock()
        self.thread: threading.Thread | None = None

    def __call__(self, round_number: int, stats=None) -> None:
        if not self._busy.acquire(blocking=False):
            log.info("hub push of an earlier round still running; skipping round %d", round_number)
            return
        # snapshot on the training thread so the upload sees a consistent model
        tmp = tempfile.TemporaryDirectory(prefix="rl-swarm-push-")
        try:
            self.trainer.model.save_pretrained(tmp.name)
            self.trainer.tokenizer.save_pretrained(tmp.name)
        except Exception as exc:
            tmp.cleanup()
            self._busy.release()
            self._report(round_number, "", False, f"could not save the model for upload: {exc}")
            return
        self.thread = threading.Thread(target=self._upload, args=(round_number, tmp), daemon=True)
        self.thread.start()

    def _upload(self, round_number: int, tmp) -> None:
        repo = ""
        try:
            from huggingface_hub import HfApi  # only when pushing: node.main imports this module in every process

            api = HfApi(endpoint=self._endpoint, token=self._token)
            user = self._user or api.whoami()["name"]
            repo = repo_name(user, self.model_name, self.peer_name)
            api.create_repo(repo, exist_ok=True)
            api.upload_folder(repo_id=repo, folder_path=tmp.name,
                              commit_message=f"rl-swarm: trained through round {round_number}")
            self._report(round_number, repo, True, None)
        except Exception as exc:  # network, auth, quota: never fatal

            self._report(round_number, repo, False, redact(f"{type(exc).__name__}: {exc}"))
        finally:
            tmp.cleanup()
            self._busy.release()

    def _report(self, round_number: int, repo: str, ok: bool, error: str | None) -> None:
        if ok:
            log.info("pushed round %d to %s", round_number, repo)
        else:
            log.warning("hub push failed (round %d): %s", round_number, error)
            self.sink.emit("warning", message=f"Hugging Face push failed: {error}")
        self.sink.emit("hf_push", round=round_number, repo=repo, ok=ok)


def make_pusher(config, identity, model_name: str, trainer, sink) -> HubPusher | None:
    if not config.hf.push:
        return None
    token = os.environ.get(config.hf.token_env, "")
    if not token:
        sink.emit("warning", message=f"hf.push is on but ${config.hf.token_env} is empty: not pushing")
        return None
    return HubPusher(token, config.hf.user, model_name, identity.name, trainer, sink, config.hf.endpoint)
