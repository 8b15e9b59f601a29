"""The desktop app (PySide6 + qasync). Never imports torch, transformers or hivemind: the node and
the local services run in subprocesses and talk to the app through desktop.events."""
