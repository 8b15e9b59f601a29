"""Friendly three-word peer names ("swift quiet otter"), derived from the peer id.

Every peer computes every other peer's name locally, so the mapping must be identical
everywhere and forever: never reorder, insert into or remove from these lists, and never
change :func:`peer_name`. Doing so renames every peer in every swarm.
"""

from __future__ import annotations

import hashlib

ADJECTIVES: tuple[str, ...] = (
    "agile", "amber", "ancient", "arctic", "bold", "brave", "bright", "bouncy",
    "breezy", "brisk", "bubbly", "calm", "careful", "cheerful", "clever", "cosmic",
    "cozy", "crisp", "curious", "dapper", "daring", "dazzling", "deft", "dreamy",
    "eager", "early", "electric", "elegant", "fancy", "fearless", "feisty", "fluffy",
    "flying", "fond", "friendly", "frosty", "fuzzy", "gentle", "giddy", "gleaming",
    "glossy", "golden", "graceful", "grand", "happy", "hardy", "helpful", "hidden",
    "humble", "jolly", "jovial", "keen", "kind", "lively", "lofty", "lucky",
    "majestic", "mellow", "merry", "mighty", "misty", "modest", "nimble", "noble",
    "patient", "peaceful", "playful", "plucky", "polite", "proud", "quick", "quiet",
    "radiant", "rapid", "rare", "regal", "rosy", "rustic", "scrappy", "shiny",
    "silent", "silky", "silver", "sleek", "smooth", "snappy", "snowy", "soft",
    "sparkly", "speedy", "spry", "stealthy", "steady", "sturdy", "sunny", "swift",
    "tall", "tidy", "tiny", "tranquil", "trusty", "vivid", "wandering", "warm",
    "wild", "wise", "witty", "woolly", "zealous", "zesty", "velvet", "valiant",
    "upbeat", "twinkling", "thrifty", "sincere", "serene", "rugged", "quirky", "plush",
    "nifty", "mossy", "lucid", "jaunty", "hopeful", "glowing", "gallant", "fiery",
)

ANIMALS: tuple[str, ...] = (
    "albatross", "alpaca", "ant", "antelope", "armadillo", "badger", "bat", "bear",
    "beaver", "bee", "bison", "buffalo", "butterfly", "camel", "capybara", "caribou",
    "cat", "chameleon", "cheetah", "chinchilla", "condor", "cougar", "crab", "crane",
    "cricket", "crow", "deer", "dolphin", "donkey", "dove", "duck", "eagle",
    "elephant", "elk", "emu", "falcon", "ferret", "finch", "flamingo", "fox",
    "frog", "gazelle", "gecko", "gerbil", "gibbon", "giraffe", "goat", "goose",
    "gorilla", "hamster", "hare", "hawk", "hedgehog", "heron", "hippo", "horse",
    "hummingbird", "ibis", "iguana", "impala", "jaguar", "jay", "kangaroo", "kingfisher",
    "kiwi", "koala", "lemur", "leopard", "lion", "llama", "lobster", "lynx",
    "macaw", "magpie", "manatee", "meerkat", "mole", "mongoose", "moose", "moth",
    "mouse", "narwhal", "newt", "octopus", "okapi", "orca", "ostrich", "otter",
    "owl", "ox", "panda", "panther", "parrot", "pelican", "penguin", "pheasant",
    "platypus", "pony", "porcupine", "puffin", "quail", "rabbit", "raccoon", "raven",
    "reindeer", "robin", "salamander", "salmon", "seal", "sheep", "sloth", "snail",
    "sparrow", "squid", "squirrel", "starling", "stork", "swan", "tapir", "tiger",
    "toad", "toucan", "turtle", "walrus", "whale", "wolf", "wombat", "wren",
)


def peer_name(peer_id: str) -> str:
    """Three words, "adjective adjective animal", with two different adjectives."""
    n = int.from_bytes(hashlib.md5(peer_id.encode("utf-8")).digest(), "big")
    n, first = divmod(n, len(ADJECTIVES))
    n, second = divmod(n, len(ADJECTIVES) - 1)
    if second >= first:  # skip the first pick so the two adjectives always differ
        second += 1
    animal = n % len(ANIMALS)
    return f"{ADJECTIVES[first]} {ADJECTIVES[second]} {ANIMALS[animal]}"
