"""The node: one peer that trains (`rl-swarm node`). Where each part of a round lives:

    main.py          put a peer together from its config (model, judge, trainer, swarm, chain) and run it
    runner.py        Node.play_round: own problems -> generate -> judge -> share -> choose -> train -> checkpoint
    sapo.py          which groups to train on: own and external ones with reward spread
    offpolicy.py     how a step weighs other peers' completions (positive / behaviour / as-own, share cap)
    health.py        PolicyWatch: is this peer's policy spreading out (own tokens' log-prob)
    skill.py         held-out problems every few rounds: is the model getting better
    pause.py         the governor: pause and resume at safe points (user, memory, battery, schedule, idle)
    memory_guard.py  will this model fit? an estimate before loading, with advice
    difficulty.py    this peer's own problem level (pass rate near a target)
    grpo.py          GRPOTrainer: batched generation, the clipped objective over micro-batches
    rounds.py        where round numbers come from (a counter, the chain's clock, the peers'), followed
    comms.py         who a node talks to: the Communication protocol (the DHT, a board, or nobody)
    stop.py          StopControl: stop now or after the round (signals, the app's stdin)
    connections.py   what a node holds: its chain link (desktop.chain.link) and its DHT swarm
    checkpoint.py    per-round checkpoints, written atomically
    models.py hub.py the tiny pool built in code, Hugging Face models and downloads
    warmstart.py tokenizer_build.py  how the shipped tiny weights and tokenizer were made
    hf_push.py       optional push to the Hugging Face Hub after each round
    proposer_role.py `--role proposer`: publish problems, tune their difficulty
    errors.py        NodeError and exit codes
"""
