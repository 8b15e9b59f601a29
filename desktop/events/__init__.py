"""What a node says, and what watchers make of it: the one event protocol and its readings.

    protocol.py    every event type, versioned JSON lines (make, encode, decode, EventSink);
                   re-exported here: ``from desktop.events import EventSink``
    text.py        an event as a line of text for a person (logs, `rl-swarm node` without --json-events)
    status.py      events folded into a NodeStatus (the dashboard, `rl-swarm swarm`'s table) and
                   the node's status file (`rl-swarm swarm-status`)
    swarm_view.py  the swarm as one peer sees it: peers heard on the DHT merged with the chain's
    history.py     one line per finished round in <data dir>/history.jsonl, read back at launch

Standard library only: the GUI imports all of it without loading torch or hivemind.
"""

from desktop.events.protocol import (EVENT_TYPES, NUM, OPT_NUM, OPT_STR, SCHEMA, VERSION, EventError, EventSink,  # noqa: F401
                                     decode, encode, make, validate)
