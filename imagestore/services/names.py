"""Generated container names, ``adjective_surname`` like Docker's (with its own lists)."""

from __future__ import annotations

import secrets

ADJECTIVES = [
    "admiring", "agitated", "amazing", "bold", "brave", "busy", "calm", "clever", "cool", "crazy", "dazzling",
    "eager", "elastic", "epic", "festive", "focused", "gallant", "gifted", "happy", "hopeful", "jolly", "keen",
    "kind", "laughing", "loving", "lucid", "modest", "nifty", "nostalgic", "optimistic", "peaceful", "quirky",
    "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "upbeat", "vibrant", "wizardly", "zealous",
]
SURNAMES = [
    "archimedes", "babbage", "bardeen", "bohr", "boole", "curie", "darwin", "dijkstra", "einstein", "euler",
    "faraday", "fermat", "feynman", "galileo", "gauss", "goodall", "hamilton", "hopper", "hypatia", "johnson",
    "kepler", "knuth", "lamarr", "leakey", "lovelace", "maxwell", "meitner", "newton", "noether", "pascal",
    "pasteur", "ritchie", "shannon", "tesla", "thompson", "torvalds", "turing", "volta", "wozniak", "yalow",
]


def generate_name(taken: set[str] | None = None) -> str:
    taken = taken or set()
    for _ in range(100):
        name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
        if name not in taken:
            return name
    return f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}{secrets.randbelow(100)}"
