"""RL Swarm Desktop: a peer-to-peer GRPO node, its local swarm and its desktop app."""

__version__ = "0.1.0"
