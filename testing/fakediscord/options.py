"""Slash-command options typed from the synced command, as the Discord client would send them."""

from __future__ import annotations

from typing import Any

from .builders import channel_json, member_json, role_json, user_json
from .world import World

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11
_SNOWFLAKE_TYPES = (USER, CHANNEL, ROLE, MENTIONABLE)

Option = dict[str, Any]


def build_options(
    world: World,
    guild_id: int,
    command: dict[str, Any],
    values: dict[str, Any] | list[Option],
    subcommand: str | None,
    group: str | None,
) -> tuple[list[Option], dict[str, Any]]:
    """Return ``(options, resolved)`` for an INTERACTION_CREATE's ``data``.

    A dict of values is checked and typed against the registered schema (unknown or missing
    required options, wrong types, choices and ranges raise ``ValueError``, because the real
    client would never send them). A list is sent as-is, for deliberately odd payloads.
    """
    schema: list[Option] = command.get("options", [])
    name = f"/{command['name']}"
    if group is not None:
        schema = _child(schema, group, SUB_COMMAND_GROUP, name).get("options", [])
        name += f" {group}"
    if subcommand is not None:
        schema = _child(schema, subcommand, SUB_COMMAND, name).get("options", [])
    elif any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
        raise ValueError(f"{name} needs a subcommand: {[o['name'] for o in schema]}")
    resolved: dict[str, Any] = {}
    if isinstance(values, list):
        options = values
    else:
        options = _typed(world, guild_id, schema, values, resolved, name)
    if subcommand is not None:
        options = [{"type": SUB_COMMAND, "name": subcommand, "options": options}]
    if group is not None:
        options = [{"type": SUB_COMMAND_GROUP, "name": group, "options": options}]
    return options, resolved


def _child(schema: list[Option], name: str, kind: int, parent: str) -> Option:
    for option in schema:
        if option["name"] == name and option["type"] == kind:
            return option
    raise ValueError(f"{parent} has no {'group' if kind == SUB_COMMAND_GROUP else 'subcommand'} {name!r}")


def _typed(
    world: World,
    guild_id: int,
    schema: list[Option],
    values: dict[str, Any],
    resolved: dict[str, Any],
    where: str,
) -> list[Option]:
    by_name = {o["name"]: o for o in schema}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ValueError(f"{where} has no option(s) {unknown}; it has {sorted(by_name)}")
    missing = sorted(o["name"] for o in schema if o.get("required") and o["name"] not in values)
    if missing:
        raise ValueError(f"{where} requires option(s) {missing}")
    typed = []
    for name, raw in values.items():
        spec = by_name[name]
        value = _coerce(spec, raw, f"{where} {name}")
        typed.append({"name": name, "type": spec["type"], "value": value})
        if spec["type"] in _SNOWFLAKE_TYPES:
            _resolve(world, guild_id, spec["type"], int(value), resolved)
    return typed


def _coerce(spec: Option, raw: Any, where: str) -> Any:
    """The wire value for one option, checked against type, choices, length and range."""
    kind = spec["type"]
    if kind == ATTACHMENT:
        raise NotImplementedError("attachment options are not supported by the fake")
    if kind in _SNOWFLAKE_TYPES:
        return str(getattr(raw, "id", raw))
    expected = {STRING: (str,), INTEGER: (int,), NUMBER: (int, float), BOOLEAN: (bool,)}[kind]
    if not isinstance(raw, expected) or (kind in (INTEGER, NUMBER) and isinstance(raw, bool)):
        raise ValueError(f"{where} must be {expected[0].__name__}, got {raw!r}")
    value = float(raw) if kind == NUMBER else raw
    choices = [c["value"] for c in spec.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"{where} must be one of {choices}, got {value!r}")
    size = len(value) if kind == STRING else value
    low = spec.get("min_length" if kind == STRING else "min_value")
    high = spec.get("max_length" if kind == STRING else "max_value")
    if kind != BOOLEAN and ((low is not None and size < low) or (high is not None and size > high)):
        raise ValueError(f"{where} must be within [{low}, {high}], got {value!r}")
    return value


def _resolve(world: World, guild_id: int, kind: int, target: int, resolved: dict[str, Any]) -> None:
    """Add the user, member, channel or role an option names to ``resolved``."""
    guild = world.guilds[guild_id]
    if kind in (USER, MENTIONABLE) and target in world.users:
        resolved.setdefault("users", {})[str(target)] = user_json(world.users[target])
        if target in guild.members:
            member = member_json(world, guild.members[target], with_user=False, with_permissions=True)
            resolved.setdefault("members", {})[str(target)] = member
    elif kind in (ROLE, MENTIONABLE) and target in guild.roles:
        resolved.setdefault("roles", {})[str(target)] = role_json(guild.roles[target])
    elif kind == CHANNEL and target in world.channels:
        channel = {
            **channel_json(world.channels[target]),
            "permissions": str(world.permissions_of(guild_id, world.bot.id)),
        }
        resolved.setdefault("channels", {})[str(target)] = channel
    else:
        raise ValueError(
            f"option value {target} names no known {'channel' if kind == CHANNEL else 'user or role'}"
        )
