"""Talking to the swarm: signed rollout records on a hivemind DHT.

``records`` (pure msgpack) loads eagerly; the DHT parts import hivemind, which is heavy, so
they load on first use.
"""

from .records import RecordError, RolloutItem, RolloutRecord, decode_rollouts, encode_rollouts

_LAZY = {
    "SwarmDHT": "dht", "SwarmError": "dht", "publisher_peer_id": "dht",
    "DHTCommunication": "exchange", "rollout_key": "exchange",
}

__all__ = ["RecordError", "RolloutItem", "RolloutRecord", "decode_rollouts", "encode_rollouts",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
