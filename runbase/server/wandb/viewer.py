"""Who asks, and what the server offers: ``viewer``, ``serverInfo``, ``entity`` and the
organisation lookups the client makes on every run (runbase has no organisations: null)."""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType, QueryType

from runbase.backend.accounts import KeyRecord
from runbase.server.wandb.context import Info
from runbase.server.wandb.ids import global_id

# The server features runbase implements, as the client asks for them by name.
FEATURES = (
    "LARGE_FILENAMES",
    "TOTAL_COUNT_IN_FILE_CONNECTION",
    "FILESTREAM_GZIP",
    "UPDATE_RUN_STATE",
)

query = QueryType()
user_type = ObjectType("User")
entity_type = ObjectType("Entity")


def user_node(name: str, teams: tuple[str, ...] = (), admin: bool = False) -> dict[str, Any]:
    """A ``User`` as the resolvers hand it on."""
    return {
        "id": global_id("User", name),
        "name": name,
        "username": name,
        "email": None,
        "admin": admin,
        "flags": {},
        "entity": name,
        "deletedAt": None,
        "photoUrl": None,
        "apiKeys": {"edges": []},
        "teams": {"edges": [{"node": entity_node(team)} for team in (name, *teams)]},
    }


def entity_node(name: str, is_team: bool = False) -> dict[str, Any]:
    return {
        "id": global_id("Entity", name),
        "name": name,
        "isTeam": is_team,
        "entityType": "TEAM" if is_team else "USER",
        "available": False,
        "photoUrl": None,
        "readOnly": False,
        "readOnlyAdmin": False,
        "privateOnly": False,
        "storageBytes": 0,
        "codeSavingEnabled": True,
        "defaultAccess": "USER_READ",
        "isPaid": False,
        "members": [],
        "organization": None,
        "xxhashDigestsEnabled": False,
    }


def member_node(name: str, admin: bool) -> dict[str, Any]:
    return {
        "id": global_id("User", name),
        "admin": admin,
        "pending": False,
        "email": None,
        "username": name,
        "name": name,
        "photoUrl": None,
        "accountType": "USER",
        "apiKey": None,
    }


@query.field("viewer")
def resolve_viewer(_: None, info: Info) -> dict[str, Any]:
    ctx = info.context
    principal = ctx.principal
    node = user_node(principal.user, tuple(sorted(principal.teams)), principal.admin)
    keys = ctx.accounts.list_keys(principal.user) if ctx.accounts else []
    node["apiKeys"] = {"edges": [{"node": key_node(key)} for key in keys if not key.revoked]}
    return node


def key_node(key: KeyRecord) -> dict[str, Any]:
    """An API key as W&B names it: by its first characters (the key itself is not kept)."""
    name = key.prefix or f"key-{key.id}"
    return {"id": global_id("ApiKey", str(key.id)), "name": name, "description": key.label}


@query.field("serverInfo")
def resolve_server_info(_: None, info: Info) -> dict[str, Any]:
    features = [{"name": name, "isEnabled": True} for name in FEATURES]
    return {"features": features, "cliVersionInfo": {}, "latestLocalVersionInfo": None}


@query.field("entity")
def resolve_entity(_: None, info: Info, name: str | None = None) -> Any:
    ctx = info.context
    principal = ctx.principal
    name = name or principal.user
    if name != principal.user and name not in principal.teams and not principal.admin:
        return None
    users = ctx.accounts.list_users() if ctx.accounts else []
    members = [user for user in users if name == user.name or name in user.teams]
    if ctx.accounts and not members:
        return None  # an entity nobody registered
    node = entity_node(name, is_team=all(user.name != name for user in members))
    node["members"] = [member_node(user.name, user.admin) for user in members]
    return node


@query.field("organization")
def resolve_organization(_: None, info: Info, name: str | None = None) -> None:
    return None


bindables = [query, user_type, entity_type]
