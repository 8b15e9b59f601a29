"""Talking to the swarm over a hivemind DHT: signed records, each under the one key it may use.

    records.py            wire schema v2 (rollouts v3): rollouts (with problem references, tokens and
                          log-probs) and roster entries, their keys, the bounded decoder
    problems_exchange.py  proposer problems and solver feedback, and their channels
    homes.py              the one key each kind of record may live under (the validator's question)
    dht.py                SwarmDHT: one hivemind peer on the node's swarm.pem, and the validator
                          that keeps junk and misplaced records off every honest node
    owner.py              which peer an ``[owner:…]`` subkey proves wrote an entry
    directory.py          who is in the swarm (the sharded roster), sampled and filtered
    bootnodes.py          which bootnodes answer (never ourselves, well formed, a TCP port open)
    exchange.py           DHTCommunication: publish ours, read a bounded sample of the others'
    clock.py              the peers' round when no chain keeps it
    types.py              plain data handed to the node (PeerRollouts)

``records``, ``problems_exchange``, ``owner`` and ``types`` are pure (msgpack, cryptography); ``dht``
and what uses it import hivemind.
The processes that run local swarms live in ``desktop.local``, not here.
"""
