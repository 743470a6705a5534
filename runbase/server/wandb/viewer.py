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
    principal = info.context.principal
    return user_node(principal.user, tuple(sorted(principal.teams)), principal.admin)


@user_type.field("apiKeys")
def resolve_api_keys(user: dict[str, Any], info: Info) -> dict[str, Any]:
    """The viewer's own keys (looked up only when asked for); nobody else's."""
    ctx = info.context
    own = ctx.accounts is not None and user["name"] == ctx.principal.user
    keys = ctx.accounts.list_keys(user["name"]) if ctx.accounts and own else []
    return {"edges": [{"node": key_node(key)} for key in keys if not key.revoked]}


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
    """The viewer's own entity or one of its teams from the principal alone (the client asks
    on every run); another entity only for an admin, and only one a user or team holds."""
    ctx = info.context
    principal = ctx.principal
    name = name or principal.user
    if name == principal.user or name in principal.teams:
        return entity_node(name, is_team=name != principal.user)
    if not principal.admin:
        return None
    if ctx.accounts is None:
        return entity_node(name)
    users = ctx.accounts.list_users()
    if any(user.name == name for user in users):
        return entity_node(name)
    return entity_node(name, is_team=True) if any(name in u.teams for u in users) else None


@entity_type.field("members")
def resolve_members(entity: dict[str, Any], info: Info) -> list[dict[str, Any]]:
    """The entity's user, or the team's members (looked up only when asked for)."""
    accounts = info.context.accounts
    name = entity["name"]
    if accounts is None:
        return [member_node(name, info.context.principal.admin)]
    users = accounts.list_users()
    return [member_node(u.name, u.admin) for u in users if name == u.name or name in u.teams]


@query.field("organization")
def resolve_organization(_: None, info: Info, name: str | None = None) -> None:
    return None


bindables = [query, user_type, entity_type]
