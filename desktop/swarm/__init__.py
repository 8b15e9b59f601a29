"""Talking to the swarm over a hivemind DHT: signed records, each under the one key it may use.

    records.py            wire schema v2: rollouts (with problem references) and roster entries,
                          the key each record must live under, the bounded decoder
    problems_exchange.py  proposer problems and solver feedback, and their channels
    dht.py                SwarmDHT: one hivemind peer on the node's swarm.pem, and the validator
                          that keeps junk and misplaced records off every honest node
    owner.py              which peer an ``[owner:…]`` subkey proves wrote an entry
    directory.py          who is in the swarm (the sharded roster), sampled and filtered
    exchange.py           DHTCommunication: publish ours, read a bounded sample of the others'
    clock.py              the peers' round when no chain keeps it
    types.py              plain data handed to the node (PeerRollouts)

``records``, ``problems_exchange``, ``owner`` and ``types`` are pure (msgpack, cryptography); ``dht``
and what uses it import hivemind.
The processes that run local swarms live in ``desktop.local``, not here.
"""
