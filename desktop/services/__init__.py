"""The local profile's services (`rl-swarm services`): what the public swarm's servers do, on this machine.

    stack.py         LocalServices: anvil + coordinator + login server + round keeper, kept alive
    login_server.py  the sign-in page and the login API on 127.0.0.1 (bounded logs, session secret)
    api.py           the /api/* routes rl-swarm's node calls, strictly validated
    accounts.py      local accounts: an email's key, encrypted on this machine
    chain_writer.py  sends the accounts' transactions (nonces, revert names)
    round_keeper.py  the local stage manager: advances rounds on a schedule or when all submitted
"""
