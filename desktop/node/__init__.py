"""The node: one peer that trains (`rl-swarm node`). Where each part of a round lives:

    main.py          put a peer together from its config (model, judge, trainer, swarm, chain) and run it
    runner.py        Node.play_round: own problems -> generate -> judge -> share -> choose -> train -> checkpoint
    sapo.py          which groups to train on: own and external ones with reward spread
    difficulty.py    this peer's own problem level (pass rate near a target)
    grpo.py          GRPOTrainer: batched generation, the clipped objective over micro-batches
    rounds.py        where round numbers come from (a counter, the chain, the peers) and who we talk to
    connections.py   the chain link and the DHT swarm for a node; bootnodes that answer
    chain_link.py    register, follow the coordinator's rounds, queue rewards and winners
    checkpoint.py    per-round checkpoints, written atomically
    models.py hub.py the tiny pool built in code, Hugging Face models and downloads
    warmstart.py tokenizer_build.py  how the shipped tiny weights and tokenizer were made
    hf_push.py       optional push to the Hugging Face Hub after each round
    proposer_role.py `--role proposer`: publish problems, tune their difficulty
    errors.py        NodeError and exit codes
"""
