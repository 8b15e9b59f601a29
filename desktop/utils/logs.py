"""Human-readable logs: rotating files in the log dir, with secrets redacted before they are written.

stdout is reserved for the event protocol, so the console only gets warnings and errors (stderr).
A process watched by the app (``--json-events``) sends its records as ``log`` events instead:
level and logger travel as fields, so nothing has to recover them from text.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from pathlib import Path
from typing import Callable

REDACTED = "[REDACTED]"
_PATTERNS = [
    re.compile(r"hf_[A-Za-z0-9]{20,}"),                                   # Hugging Face tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),                  # HTTP bearer tokens
    re.compile(r"(?<![0-9a-fA-F])(0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])"),    # raw EVM private keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password|private[_-]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
]
_SECRET_ENV = re.compile(r"(?i)(token|secret|password|private|api_?key)")


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: (m.group(1) or "") + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    for name, value in os.environ.items():  # values of secret-looking variables, whatever they look like
        if len(value) >= 8 and _SECRET_ENV.search(name) and value in text:
            text = text.replace(value, REDACTED)
    return text


# ``log.error(..., extra=FILE_ONLY)``: for a message the program prints to the user itself, so
# the console handler does not repeat it (and a traceback stays in the log file).
FILE_ONLY = {"file_only": True}


def _for_console(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


MAX_RECORD_CHARS = 16_000  # a record with a huge repr stays one bounded line of the event stream


def _level_name(levelno: int) -> str:
    """The standard name for a record's level: a library may rename levels for its own output
    (``logging.addLevelName(WARNING, "WARN")``), the protocol keeps one spelling."""
    for number, name in ((logging.CRITICAL, "CRITICAL"), (logging.ERROR, "ERROR"), (logging.WARNING, "WARNING"),
                         (logging.INFO, "INFO")):
        if levelno >= number:
            return name
    return "DEBUG"


class EventHandler(logging.Handler):
    """Records as ``log`` events: ``emit_event("log", level=..., logger=..., message=...)``."""

    def __init__(self, emit_event: Callable[..., object], level: int | str = logging.INFO) -> None:
        super().__init__(level)
        self._emit_event = emit_event
        self.addFilter(_for_console)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._emit_event("log", level=_level_name(record.levelno), logger=record.name,
                             message=redact(message)[:MAX_RECORD_CHARS])
        except Exception:  # logging must never take the process down
            self.handleError(record)


def send_records_as_events(emit_event: Callable[..., object], level: int | str = logging.INFO) -> None:
    """Replace the console (stderr) handler of :func:`setup_logging` with an :class:`EventHandler`:
    the app reading our event stream then gets INFO and above with their level and logger."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "console", False) or isinstance(handler, EventHandler):
            root.removeHandler(handler)
    root.addHandler(EventHandler(emit_event, level))
    root.setLevel(min(root.level, logging.getLevelName(level) if isinstance(level, str) else level))


def setup_logging(log_dir: Path, name: str = "node", level: str = "INFO", max_bytes: int = 5_000_000,
                  backups: int = 3, console_level: str = "WARNING") -> Path:
    """Send the root logger to ``<log_dir>/<name>.log`` (rotating) and warnings to stderr."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{name}.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                        encoding="utf-8")
    file_handler.setFormatter(RedactingFormatter(fmt))
    file_handler.setLevel(level)
    console = logging.StreamHandler()  # stderr
    console.setFormatter(RedactingFormatter("%(levelname)s: %(message)s"))
    console.setLevel(console_level)
    console.addFilter(_for_console)
    console.console = True  # the handler send_records_as_events replaces
    root.addHandler(file_handler)
    root.addHandler(console)
    root.setLevel(min(logging.getLevelName(level), logging.getLevelName(console_level)))
    for noisy in ("urllib3", "httpx", "filelock", "huggingface_hub", "datasets", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
