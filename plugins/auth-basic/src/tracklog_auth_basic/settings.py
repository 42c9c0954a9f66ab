"""The plugin's settings, from its options and an MLflow ``basic_auth.ini``."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tracklog import errors
from tracklog_auth_basic import options
from tracklog_auth_basic.permissions import Permission

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb", "mssql")


@dataclass(frozen=True)
class Settings:
    enabled: bool
    admin_username: str
    admin_password: str
    default_permission: Permission
    database_uri: str
    min_password_length: int
    max_failures: int
    failure_window: int


def enabled() -> bool:
    mode = str(options.MODE.read()).strip().lower()
    if mode in ("", "none", "off"):
        return False
    if mode != "basic":
        raise errors.invalid(f"TRACKLOG_AUTH must be 'basic' or empty, got {mode!r}")
    return True


def _ini(path: str) -> dict[str, str]:
    if not path:
        return {}
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as exc:
        raise errors.invalid(f"MLFLOW_AUTH_CONFIG_PATH: cannot read {path!r}: "
                             f"{exc.strerror}") from None
    except configparser.Error:
        raise errors.invalid(f"MLFLOW_AUTH_CONFIG_PATH: {path!r} is not an ini file") from None
    if not parser.has_section("mlflow"):
        raise errors.invalid(f"MLFLOW_AUTH_CONFIG_PATH: {path!r} has no [mlflow] section")
    return {k: v.strip() for k, v in parser.items("mlflow")}


def read(backend_store_uri: str | None) -> Settings:
    """Every setting, options first, then the ini file, then the defaults."""
    ini = _ini(str(options.CONFIG_PATH.read()).strip())
    permission = (str(options.DEFAULT_PERMISSION.read()).strip()
                  or ini.get("default_permission") or "READ")
    try:
        default = Permission.parse(permission)
    except ValueError:
        raise errors.invalid(
            f"TRACKLOG_AUTH_DEFAULT_PERMISSION must be one of {Permission.names()}, "
            f"got {permission!r}") from None
    database = str(options.DATABASE_URI.read()).strip() or ini.get("database_uri", "")
    return Settings(
        enabled=enabled(),
        admin_username=str(options.ADMIN_USERNAME.read()).strip()
        or ini.get("admin_username", "") or "admin",
        admin_password=str(options.ADMIN_PASSWORD.read()) or ini.get("admin_password", ""),
        default_permission=default,
        database_uri=database or database_beside(backend_store_uri),
        min_password_length=int(options.MIN_PASSWORD_LENGTH.read()),
        max_failures=int(options.MAX_FAILURES.read()),
        failure_window=int(options.FAILURE_WINDOW.read()),
    )


def database_beside(backend_store_uri: str | None) -> str:
    """The tracking store's own database when it is SQL; else a SQLite file beside the
    file store's directory (never inside it, where the store lists experiments)."""
    uri = backend_store_uri or "mlruns"
    scheme = urlsplit(uri).scheme.split("+", 1)[0].lower()
    if scheme in SQL_SCHEMES:
        return uri
    if scheme == "file":
        path = unquote(urlsplit(uri).path)
    elif len(scheme) <= 1:  # a plain path, or a Windows drive letter
        path = uri
    else:
        raise errors.invalid(
            f"tracklog-auth-basic cannot keep users in a {scheme!r} tracking store; "
            "set TRACKLOG_AUTH_DATABASE_URI")
    path = os.path.abspath(path).rstrip(os.sep)
    return "sqlite:///" + path + "-auth.db"
