"""Who asks, and what the server offers: ``viewer``, ``serverInfo``, ``entity`` and the
organisation lookups the client makes on every run (runbase has no organisations: null)."""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType, QueryType

from runbase.server.wandb.context import Info
from runbase.server.wandb.ids import global_id

# The server features runbase implements, as the client asks for them by name.
FEATURES = ("LARGE_FILENAMES", "TOTAL_COUNT_IN_FILE_CONNECTION")

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
        "organization": None,
        "xxhashDigestsEnabled": False,
    }


@query.field("viewer")
def resolve_viewer(_: None, info: Info) -> dict[str, Any]:
    principal = info.context.principal
    return user_node(principal.user, tuple(sorted(principal.teams)), principal.admin)


@query.field("serverInfo")
def resolve_server_info(_: None, info: Info) -> dict[str, Any]:
    features = [{"name": name, "isEnabled": True} for name in FEATURES]
    return {"features": features, "cliVersionInfo": {}, "latestLocalVersionInfo": None}


@query.field("entity")
def resolve_entity(_: None, info: Info, name: str | None = None) -> Any:
    principal = info.context.principal
    name = name or principal.user
    if name != principal.user and name not in principal.teams and not principal.admin:
        return None
    return entity_node(name, is_team=name != principal.user)


@query.field("organization")
def resolve_organization(_: None, info: Info, name: str | None = None) -> None:
    return None


@query.field("clientIDMapping")
def resolve_client_id_mapping(_: None, info: Info, clientID: str) -> None:
    return None


bindables = [query, user_type, entity_type]
