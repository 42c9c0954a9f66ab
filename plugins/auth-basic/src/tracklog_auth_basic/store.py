"""Users, groups, permissions and tokens in the plugin's own tables (SQLAlchemy Core)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from tracklog import errors
from tracklog_auth_basic import passwords
from tracklog_auth_basic.permissions import RESOURCE_TYPES, Permission
from tracklog_auth_basic.schema import (
    VERSION_TABLE,
    group_members,
    groups,
    permissions,
    tokens,
    users,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
TOKEN_PREFIX = "tlk_"
USER, GROUP = "user", "group"


@dataclass(frozen=True)
class User:
    """An authenticated caller: what the ``authenticate`` hook returns."""

    id: int
    username: str
    is_admin: bool
    group_ids: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


def now_ms() -> int:
    return int(time.time() * 1000)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def check_username(name: Any, field: str = "username") -> str:
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid(f"Missing value for required parameter '{field}'.")
    if len(name) > 255 or ":" in name or any(ord(c) < 32 or ord(c) == 127 for c in name) \
            or name != name.strip():
        raise errors.invalid(f"Invalid value for parameter '{field}': at most 255 characters, "
                             "no ':', no control characters, no surrounding spaces.")
    return name


def check_password(password: Any, minimum: int, field: str = "password") -> str:
    if not isinstance(password, str) or not password:
        raise errors.invalid(f"Missing value for required parameter '{field}'.")
    if len(password) < minimum:
        raise errors.invalid(f"Invalid value for parameter '{field}': a password needs at "
                             f"least {minimum} characters.")
    if len(password) > 1024:
        raise errors.invalid(f"Invalid value for parameter '{field}': at most 1024 characters.")
    return password


def create_engine(uri: str) -> Engine:
    try:
        url = sa.make_url(uri)
    except Exception:
        raise errors.invalid("Invalid auth database URI") from None
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if url.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool
        else:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
        if backend in ("mysql", "mariadb") and url.drivername in ("mysql", "mariadb"):
            url = url.set(drivername=f"{backend}+pymysql")
    try:
        return sa.create_engine(url, **kwargs)
    except ModuleNotFoundError as exc:
        raise errors.invalid(f"The database driver for the auth database is not installed "
                             f"({exc.name})") from None


def upgrade(engine: Engine) -> None:
    """Bring the plugin's tables to the newest revision (its own Alembic version table)."""
    from alembic import command
    from alembic.config import Config

    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


class AuthStore:
    def __init__(self, uri: str, migrate: bool = True) -> None:
        self.engine = create_engine(uri)
        if migrate:
            upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def version(self) -> str | None:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(VERSION_TABLE):
                return None
            return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()

    # --- users -----------------------------------------------------------------------

    def _user(self, conn: Connection, row: Any) -> User:
        ids = conn.execute(sa.select(group_members.c.group_id)
                           .where(group_members.c.user_id == row.id)).scalars().all()
        return User(row.id, row.username, bool(row.is_admin), tuple(sorted(ids)))

    def create_user(self, username: str, password: str, is_admin: bool = False) -> User:
        hashed = passwords.hash_password(password)
        try:
            with self.engine.begin() as conn:
                uid = conn.execute(users.insert().values(
                    username=username, password_hash=hashed, is_admin=is_admin,
                    created_at=now_ms())).inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError:
            raise errors.TracklogError(f"User '{username}' already exists.",
                                       errors.ErrorCode.RESOURCE_ALREADY_EXISTS) from None
        return User(int(uid), username, is_admin)

    def user_row(self, username: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(users).where(users.c.username == username)).first()

    def get_user(self, username: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
            if row is None:
                raise errors.not_found(f"User '{username}' does not exist.")
            return self._user(conn, row)

    def user_by_id(self, user_id: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
            return None if row is None else self._user(conn, row)

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.username)).all()
            return [self._user(conn, r) for r in rows]

    def count_admins(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)
                                    .where(users.c.is_admin == sa.true())).scalar() or 0)

    def authenticate(self, username: str, password: str) -> User | None:
        row = self.user_row(username)
        if row is None:
            passwords.dummy_verify(password)
            return None
        if not passwords.verify(row.password_hash, password):
            return None
        with self.engine.connect() as conn:
            return self._user(conn, row)

    def update_password(self, username: str, password: str) -> None:
        hashed = passwords.hash_password(password)
        with self.engine.begin() as conn:
            done = conn.execute(users.update().where(users.c.username == username)
                                .values(password_hash=hashed)).rowcount
        if not done:
            raise errors.not_found(f"User '{username}' does not exist.")

    def _keep_an_admin(self, username: str) -> None:
        if self.get_user(username).is_admin and self.count_admins() <= 1:
            raise errors.invalid(f"Invalid value for parameter 'username': '{username}' is the "
                                 "last administrator and cannot be removed or lose the role.")

    def update_admin(self, username: str, is_admin: bool) -> None:
        if not is_admin:
            self._keep_an_admin(username)
        with self.engine.begin() as conn:
            done = conn.execute(users.update().where(users.c.username == username)
                                .values(is_admin=is_admin)).rowcount
        if not done:
            raise errors.not_found(f"User '{username}' does not exist.")

    def delete_user(self, username: str) -> None:
        self._keep_an_admin(username)
        user = self.get_user(username)
        with self.engine.begin() as conn:
            conn.execute(tokens.delete().where(tokens.c.user_id == user.id))
            conn.execute(group_members.delete().where(group_members.c.user_id == user.id))
            conn.execute(permissions.delete().where(permissions.c.subject_type == USER,
                                                    permissions.c.subject_id == user.id))
            conn.execute(users.delete().where(users.c.id == user.id))

    # --- groups ----------------------------------------------------------------------

    def create_group(self, name: str) -> int:
        try:
            with self.engine.begin() as conn:
                key = conn.execute(groups.insert().values(name=name)).inserted_primary_key
                return int(key[0])  # type: ignore[index]
        except IntegrityError:
            raise errors.TracklogError(f"Group '{name}' already exists.",
                                       errors.ErrorCode.RESOURCE_ALREADY_EXISTS) from None

    def group_id(self, name: str) -> int:
        with self.engine.connect() as conn:
            gid = conn.execute(sa.select(groups.c.id).where(groups.c.name == name)).scalar()
        if gid is None:
            raise errors.not_found(f"Group '{name}' does not exist.")
        return int(gid)

    def list_groups(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(groups.c.id, groups.c.name, users.c.username)
                .select_from(groups.outerjoin(group_members,
                                              group_members.c.group_id == groups.c.id)
                             .outerjoin(users, users.c.id == group_members.c.user_id))
                .order_by(groups.c.name, users.c.username)).all()
        out: dict[int, dict[str, Any]] = {}
        for gid, name, member in rows:
            entry = out.setdefault(gid, {"id": gid, "name": name, "members": []})
            if member is not None:
                entry["members"].append(member)
        return list(out.values())

    def delete_group(self, name: str) -> None:
        gid = self.group_id(name)
        with self.engine.begin() as conn:
            conn.execute(group_members.delete().where(group_members.c.group_id == gid))
            conn.execute(permissions.delete().where(permissions.c.subject_type == GROUP,
                                                    permissions.c.subject_id == gid))
            conn.execute(groups.delete().where(groups.c.id == gid))

    def add_member(self, group: str, username: str) -> None:
        gid, user = self.group_id(group), self.get_user(username)
        if gid in user.group_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(group_members.insert().values(group_id=gid, user_id=user.id))

    def remove_member(self, group: str, username: str) -> None:
        gid, user = self.group_id(group), self.get_user(username)
        with self.engine.begin() as conn:
            conn.execute(group_members.delete().where(group_members.c.group_id == gid,
                                                      group_members.c.user_id == user.id))

    # --- permissions -----------------------------------------------------------------

    def subject_id(self, subject_type: str, name: str) -> int:
        return self.get_user(name).id if subject_type == USER else self.group_id(name)

    def get_permission(self, subject_type: str, subject_id: int, resource_type: str,
                       resource_id: str) -> Permission | None:
        with self.engine.connect() as conn:
            name = conn.execute(sa.select(permissions.c.permission).where(
                permissions.c.subject_type == subject_type,
                permissions.c.subject_id == subject_id,
                permissions.c.resource_type == resource_type,
                permissions.c.resource_id == resource_id)).scalar()
        return None if name is None else Permission[name]

    def set_permission(self, subject_type: str, subject_id: int, resource_type: str,
                       resource_id: str, permission: Permission, *, replace: bool = True
                       ) -> bool:
        """Grant; ``replace=False`` refuses an existing grant (False is returned)."""
        assert resource_type in RESOURCE_TYPES
        where = (permissions.c.subject_type == subject_type,
                 permissions.c.subject_id == subject_id,
                 permissions.c.resource_type == resource_type,
                 permissions.c.resource_id == resource_id)
        with self.engine.begin() as conn:
            if conn.execute(permissions.update().where(*where)
                            .values(permission=permission.name)).rowcount:
                return replace
            try:
                with conn.begin_nested():
                    conn.execute(permissions.insert().values(
                        subject_type=subject_type, subject_id=subject_id,
                        resource_type=resource_type, resource_id=resource_id,
                        permission=permission.name))
            except IntegrityError:  # granted meanwhile by another request
                conn.execute(permissions.update().where(*where)
                             .values(permission=permission.name))
        return True

    def delete_permission(self, subject_type: str, subject_id: int, resource_type: str,
                          resource_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(permissions.delete().where(
                permissions.c.subject_type == subject_type,
                permissions.c.subject_id == subject_id,
                permissions.c.resource_type == resource_type,
                permissions.c.resource_id == resource_id)).rowcount)

    def forget_resource(self, resource_type: str, resource_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(permissions.delete().where(permissions.c.resource_type == resource_type,
                                                    permissions.c.resource_id == resource_id))

    def move_resource(self, resource_type: str, old: str, new: str) -> None:
        """Grants on ``old`` become grants on ``new`` (a registered model renamed);
        stale grants on ``new`` go first."""
        with self.engine.begin() as conn:
            conn.execute(permissions.delete().where(permissions.c.resource_type == resource_type,
                                                    permissions.c.resource_id == new))
            conn.execute(permissions.update().where(permissions.c.resource_type == resource_type,
                                                    permissions.c.resource_id == old)
                         .values(resource_id=new))

    def list_permissions(self, subject_type: str | None = None,
                         subject_id: int | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(permissions).order_by(permissions.c.resource_type,
                                               permissions.c.resource_id)
        if subject_type is not None:
            stmt = stmt.where(permissions.c.subject_type == subject_type,
                              permissions.c.subject_id == subject_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def _grants(self, user: User, resource_type: str, resource_ids: list[str] | None
                ) -> dict[str, Permission]:
        """The user's effective explicit permissions: their own grant wins, else the
        highest of their groups' grants."""
        subject = sa.or_(
            sa.and_(permissions.c.subject_type == USER, permissions.c.subject_id == user.id),
            sa.and_(permissions.c.subject_type == GROUP,
                    permissions.c.subject_id.in_(user.group_ids)),
        ) if user.group_ids else sa.and_(permissions.c.subject_type == USER,
                                         permissions.c.subject_id == user.id)
        stmt = sa.select(permissions.c.subject_type, permissions.c.resource_id,
                         permissions.c.permission).where(
            permissions.c.resource_type == resource_type, subject)
        if resource_ids is not None:
            stmt = stmt.where(permissions.c.resource_id.in_(resource_ids))
        own: dict[str, Permission] = {}
        group: dict[str, Permission] = {}
        with self.engine.connect() as conn:
            for kind, rid, name in conn.execute(stmt):
                target = own if kind == USER else group
                target[rid] = max(target.get(rid, Permission.NO_PERMISSIONS), Permission[name])
        return {**group, **own}

    def effective(self, user: User, resource_type: str, resource_ids: list[str]
                  ) -> dict[str, Permission]:
        return self._grants(user, resource_type, resource_ids)

    def all_grants(self, user: User, resource_type: str) -> dict[str, Permission]:
        return self._grants(user, resource_type, None)

    # --- tokens ----------------------------------------------------------------------

    def create_token(self, user_id: int, name: str, expires_at: int | None) -> tuple[int, str]:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            tid = conn.execute(tokens.insert().values(
                user_id=user_id, name=name, token_hash=token_digest(secret),
                created_at=now_ms(), expires_at=expires_at)).inserted_primary_key[0]  # type: ignore[index]
        return int(tid), secret

    def list_tokens(self, user_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tokens.c.id, tokens.c.name, tokens.c.created_at,
                                          tokens.c.expires_at)
                                .where(tokens.c.user_id == user_id).order_by(tokens.c.id))
            return [{k: v for k, v in r._mapping.items() if v is not None} for r in rows]

    def revoke_token(self, user_id: int, token_id: int) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(tokens.delete().where(tokens.c.id == token_id,
                                                      tokens.c.user_id == user_id)).rowcount
        if not done:
            raise errors.not_found(f"Token {token_id} does not exist.")

    def revoke_session(self, secret: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(tokens.delete().where(tokens.c.token_hash == token_digest(secret)))

    def user_for_token(self, secret: str) -> User | None:
        digest = token_digest(secret)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tokens.c.token_hash, tokens.c.expires_at,
                                         tokens.c.user_id)
                               .where(tokens.c.token_hash == digest)).first()
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                return None
            if row.expires_at is not None and row.expires_at <= now_ms():
                return None
            user = conn.execute(sa.select(users).where(users.c.id == row.user_id)).first()
            return None if user is None else self._user(conn, user)
