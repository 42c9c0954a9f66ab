"""``tracklog auth``: users, groups, permissions and tokens, straight in the database
(for the first administrator, a lost password, scripts on the server's machine)."""

from __future__ import annotations

import datetime
import os
from typing import Any

import click

_STORE_HELP = ("The tracking store the server uses (its SQL database holds the users, or "
               "a SQLite file beside a file store). TRACKLOG_AUTH_DATABASE_URI, when set, "
               "names the users' database directly.")


def _store(ctx: click.Context) -> dict[str, Any]:
    from tracklog_auth_basic import settings
    from tracklog_auth_basic.store import AuthStore

    obj: dict[str, Any] = ctx.find_object(dict) or {}
    if "auth_store" not in obj:
        s = settings.read(obj.get("backend_store_uri"))
        obj["auth_store"] = AuthStore(s.database_uri)
        obj["min_password_length"] = s.min_password_length
    return obj


def _password(value: str | None) -> str:
    if value:
        return value
    env = os.environ.get("TRACKLOG_AUTH_NEW_PASSWORD")
    if env:
        return env
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group("auth")
@click.option("--backend-store-uri", envvar="TRACKLOG_BACKEND_STORE_URI", default="mlruns",
              show_default=True, show_envvar=True, help=_STORE_HELP)
@click.pass_context
def auth(ctx: click.Context, backend_store_uri: str) -> None:
    """Users, groups, permissions and tokens of tracklog-auth-basic."""
    ctx.obj = {"backend_store_uri": backend_store_uri}


@auth.group()
def users() -> None:
    """Create, list and change users."""


@users.command("create")
@click.argument("username")
@click.option("--password", help="Else TRACKLOG_AUTH_NEW_PASSWORD, else asked.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.pass_context
def users_create(ctx: click.Context, username: str, password: str | None, admin: bool) -> None:
    from tracklog_auth_basic.store import check_password, check_username

    obj = _store(ctx)
    secret = check_password(_password(password), obj["min_password_length"])
    obj["auth_store"].create_user(check_username(username), secret, is_admin=admin)
    click.echo(f"created user {username}" + (" (administrator)" if admin else ""))


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    store = _store(ctx)["auth_store"]
    groups = {g["id"]: g["name"] for g in store.list_groups()}
    for user in store.list_users():
        names = ",".join(groups[g] for g in user.group_ids if g in groups)
        click.echo(f"{user.username}\t{'admin' if user.is_admin else 'user'}\t{names}")


@users.command("set-password")
@click.argument("username")
@click.option("--password", help="Else TRACKLOG_AUTH_NEW_PASSWORD, else asked.")
@click.pass_context
def users_set_password(ctx: click.Context, username: str, password: str | None) -> None:
    from tracklog_auth_basic.store import check_password

    obj = _store(ctx)
    obj["auth_store"].update_password(
        username, check_password(_password(password), obj["min_password_length"]))
    click.echo(f"password of {username} changed")


@users.command("set-admin")
@click.argument("username")
@click.argument("is_admin", type=bool)
@click.pass_context
def users_set_admin(ctx: click.Context, username: str, is_admin: bool) -> None:
    _store(ctx)["auth_store"].update_admin(username, is_admin)
    click.echo(f"{username} is {'an administrator' if is_admin else 'no administrator'}")


@users.command("delete")
@click.argument("username")
@click.pass_context
def users_delete(ctx: click.Context, username: str) -> None:
    _store(ctx)["auth_store"].delete_user(username)
    click.echo(f"deleted user {username}")


@auth.group()
def groups() -> None:
    """Groups of users, who share the permissions granted to the group."""


@groups.command("create")
@click.argument("name")
@click.pass_context
def groups_create(ctx: click.Context, name: str) -> None:
    from tracklog_auth_basic.store import check_username

    _store(ctx)["auth_store"].create_group(check_username(name, "name"))
    click.echo(f"created group {name}")


@groups.command("delete")
@click.argument("name")
@click.pass_context
def groups_delete(ctx: click.Context, name: str) -> None:
    _store(ctx)["auth_store"].delete_group(name)
    click.echo(f"deleted group {name}")


@groups.command("list")
@click.pass_context
def groups_list(ctx: click.Context) -> None:
    for group in _store(ctx)["auth_store"].list_groups():
        click.echo(f"{group['name']}\t{','.join(group['members'])}")


@groups.command("add-member")
@click.argument("group")
@click.argument("username")
@click.pass_context
def groups_add(ctx: click.Context, group: str, username: str) -> None:
    _store(ctx)["auth_store"].add_member(group, username)
    click.echo(f"{username} is in {group}")


@groups.command("remove-member")
@click.argument("group")
@click.argument("username")
@click.pass_context
def groups_remove(ctx: click.Context, group: str, username: str) -> None:
    _store(ctx)["auth_store"].remove_member(group, username)
    click.echo(f"{username} left {group}")


_SUBJECT = click.option("--user", "username", help="The user granted.")
_GROUP = click.option("--group", "group", help="The group granted (instead of --user).")
_KIND = click.argument("resource_type", type=click.Choice(["experiment", "registered_model"]))


def _subject(store: Any, username: str | None, group: str | None) -> tuple[str, int]:
    if bool(username) == bool(group):
        raise click.UsageError("give exactly one of --user and --group")
    if username:
        return "user", store.get_user(username).id
    return "group", store.group_id(group)


@auth.group()
def permissions() -> None:
    """Grant, revoke and list permissions on experiments and registered models."""


@permissions.command("grant")
@_KIND
@click.argument("resource_id")
@click.argument("permission", type=click.Choice(["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"],
                                                case_sensitive=False))
@_SUBJECT
@_GROUP
@click.pass_context
def permissions_grant(ctx: click.Context, resource_type: str, resource_id: str,
                      permission: str, username: str | None, group: str | None) -> None:
    from tracklog_auth_basic.permissions import Permission

    store = _store(ctx)["auth_store"]
    kind, sid = _subject(store, username, group)
    store.set_permission(kind, sid, resource_type, resource_id, Permission.parse(permission))
    click.echo(f"granted {permission.upper()} on {resource_type} {resource_id}")


@permissions.command("revoke")
@_KIND
@click.argument("resource_id")
@_SUBJECT
@_GROUP
@click.pass_context
def permissions_revoke(ctx: click.Context, resource_type: str, resource_id: str,
                       username: str | None, group: str | None) -> None:
    store = _store(ctx)["auth_store"]
    kind, sid = _subject(store, username, group)
    if not store.delete_permission(kind, sid, resource_type, resource_id):
        raise click.ClickException("no such grant")
    click.echo(f"revoked the grant on {resource_type} {resource_id}")


@permissions.command("list")
@_SUBJECT
@_GROUP
@click.pass_context
def permissions_list(ctx: click.Context, username: str | None, group: str | None) -> None:
    store = _store(ctx)["auth_store"]
    kind, sid = _subject(store, username, group)
    for p in store.list_permissions(kind, sid):
        click.echo(f"{p['resource_type']}\t{p['resource_id']}\t{p['permission']}")


@auth.group()
def tokens() -> None:
    """A user's access tokens (sent as 'Authorization: Bearer <token>')."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="token", show_default=True)
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True, max=3650))
@click.pass_context
def tokens_create(ctx: click.Context, username: str, name: str,
                  expires_in_days: float | None) -> None:
    """Create a token; it is shown once, only its hash is kept."""
    from tracklog_auth_basic.store import now_ms

    store = _store(ctx)["auth_store"]
    expires = None if expires_in_days is None else now_ms() + int(expires_in_days * 86_400_000)
    tid, secret = store.create_token(store.get_user(username).id, name, expires)
    click.echo(f"token {tid} for {username} (shown once):", err=True)
    click.echo(secret)


@tokens.command("list")
@click.argument("username")
@click.pass_context
def tokens_list(ctx: click.Context, username: str) -> None:
    store = _store(ctx)["auth_store"]
    for t in store.list_tokens(store.get_user(username).id):
        expires = t.get("expires_at")
        when = "never" if expires is None else datetime.datetime.fromtimestamp(
            expires / 1000, datetime.UTC).isoformat(timespec="seconds")
        click.echo(f"{t['id']}\t{t['name']}\texpires {when}")


@tokens.command("revoke")
@click.argument("username")
@click.argument("token_id", type=int)
@click.pass_context
def tokens_revoke(ctx: click.Context, username: str, token_id: int) -> None:
    store = _store(ctx)["auth_store"]
    store.revoke_token(store.get_user(username).id, token_id)
    click.echo(f"revoked token {token_id}")
