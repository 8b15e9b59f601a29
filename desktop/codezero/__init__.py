"""CodeZero, the game: problems, how an answer is judged, and the reward.

    problem.py        Problem, the levels, ProblemSourceError: the ground the others build on
    datasets.py       HumanEval (offline, in its wheel) and MBPP (hub or a local file)
    problems.py       a peer's own problem stream over a set or the generator
    generator.py      procedurally generated problems at five levels, with reference solutions;
                      families.py the task families each level draws from
    refs.py           problem references other peers rebuild a problem from
    rewards.py        the CodeZero reward (-1.2 / -1.0 / judge 0-1 / +-0.2)
    judges.py         ExecutionJudge (the sandbox) and LMJudge (a frozen model)
    sandbox.py        run untrusted code: namespaces, rlimits, its own uid, dies with its host
    sandbox_boot.py   the sandbox's boot stub (a program of its own)
    harness.py        candidate and tests in two processes, so the verdict cannot be forged
    proposer.py       the proposer's problems and difficulty control
"""
