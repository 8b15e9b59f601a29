"""The local profile's services (`rl-swarm services`): what the public swarm's servers do, on this machine.

    stack.py         LocalServices: anvil + coordinator + login server + round keeper, kept alive
                     (one process per data dir: services.lock; a silent chain is restarted)
    private_chain.py the chain's own random keys (owner, managers, funder); an old chain upgraded
    login_server.py  the sign-in page and the login API on 127.0.0.1 (bounded logs, session secret)
    api.py           the /api/* routes rl-swarm's node calls, strictly validated
    accounts.py      local accounts: an email's key, encrypted on this machine
    chain_writer.py  sends the accounts' transactions (nonces, revert names)
    round_keeper.py  the local stage manager: advances rounds on a schedule or when all submitted
    opening.py       HostOpening: the proxy, join desk and bootnode opened to others, host.json, preflight
    host.py          `rl-swarm host`: the services and the opening in the foreground, the first invite
    invites.py       invite codes (rlsw2, checksummed) and the host's book of them
    rpc_proxy.py     the filtering JSON-RPC proxy others reach (methods, sizes, rates, call gas)
    join_desk.py     POST /join: a signed join with an invite's secret funds its address once
"""
