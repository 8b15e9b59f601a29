"""The coordinator contract, as a node and the commands see it (reads over RPC, writes through the login API).
A node holds one ``link.ChainLink``; a reader changing how a node talks to the chain starts there.

    link.py      ChainLink: the node's one object: profile, client, queue, the chain's clock,
                 bootnodes, registration, rewards and winners (flushed in the background)
    contract.py  the SwarmCoordinator artifact (ABI, bytecode) and revert names   (json only)
    profiles.py  which chain a peer talks to: testnet, or the local services' services.json; userData.json
    connect.py   the profile of a config, the signed-in account, FollowingClient (follows the services)
    client.py    CoordinatorClient: reads, writes through the login server, ChainRoundSource
    queue.py     SubmissionQueue: submissions kept on disk until the chain answers them
    status.py    `rl-swarm chain status`: round, peers, rewards, leaderboard
    anvil.py     the local chain binary: find, start, stop, dev accounts
    deploy.py    deploy the coordinator on a local chain, send signed transactions

Heavy modules (web3, eth-account) are imported by the modules that need them, on first use.
"""
