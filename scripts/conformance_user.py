"""Create a user whose API key is its name (as W&B's test users are) in the database of
``RUNBASE_DIR``; print ``NAME KEY``. Used by scripts/wandb-conformance.sh."""

import secrets

from runbase.backend import open_accounts
from runbase.settings import Settings

name = "user" + secrets.token_hex(20)
accounts = open_accounts(Settings.load())
accounts.create_user(name)
accounts.create_key(name, label="wandb-conformance", key=name)
print(name, name)
