"""Run ids and readable display names."""

from __future__ import annotations

import random
import secrets
import string

ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clever", "cosmic", "crisp", "dainty", "dashing", "deft",
    "eager", "fancy", "fiery", "gentle", "glad", "golden", "grand", "happy", "hardy", "jolly",
    "keen", "lively", "lucky", "mellow", "misty", "noble", "proud", "quiet", "rapid", "royal",
    "serene", "sharp", "silver", "smooth", "snowy", "solar", "stellar", "sunny", "swift", "vivid",
    "warm", "wise", "witty", "young", "zesty",
)  # fmt: skip
NOUNS = (
    "breeze", "brook", "canyon", "cloud", "comet", "dawn", "dew", "dream", "dune", "ember",
    "field", "fire", "flower", "fog", "forest", "frost", "galaxy", "glade", "grass", "harbor",
    "haze", "hill", "lake", "leaf", "meadow", "moon", "morning", "mountain", "night", "ocean",
    "pine", "planet", "pond", "rain", "river", "sea", "shadow", "sky", "snow", "star", "sun",
    "thunder", "tree", "valley", "wave", "wind", "wood",
)  # fmt: skip
ID_ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_PROJECT = "uncategorized"


def new_run_id() -> str:
    """8 random lowercase alphanumerics."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(8))


def display_name(number: int) -> str:
    """``adjective-noun-N``, as wandb names runs."""
    return f"{random.choice(ADJECTIVES)}-{random.choice(NOUNS)}-{number}"
