"""What the hooks share in one server process: settings, the user store, the failure
limiter, and the tracking store used to find the experiment a run, logged model or
trace belongs to."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from dataclasses import dataclass
from typing import Any

from tracklog import errors
from tracklog_auth_basic import settings as settings_mod
from tracklog_auth_basic.limiter import FailureLimiter
from tracklog_auth_basic.permissions import EXPERIMENT, NEEDED, REGISTERED_MODEL, Permission
from tracklog_auth_basic.sessions import session_secret
from tracklog_auth_basic.store import USER, AuthStore, User

log = logging.getLogger("tracklog.auth")

REALM = 'Basic realm="tracklog"'


def unauthenticated(message: str) -> errors.TracklogError:
    err = errors.TracklogError(message, errors.ErrorCode.UNAUTHENTICATED)
    err.headers = {"WWW-Authenticate": REALM}
    return err


@dataclass(frozen=True)
class Caller:
    """The identity the ``authenticate`` hook returns."""

    user: User
    runtime: Runtime
    #: Only on the sign-in page, which must be reachable before signing in.
    anonymous: bool = False

    @property
    def username(self) -> str:
        return self.user.username


class Runtime:
    def __init__(self, config: Any, tracking: Any) -> None:
        self.settings = settings_mod.read(getattr(config, "backend_store_uri", None))
        self.store = AuthStore(self.settings.database_uri)
        self.tracking = tracking
        from tracklog.server.app import normalize_prefix

        prefix = normalize_prefix(getattr(config, "static_prefix", None))
        self.login_paths = (prefix + "/login", prefix + "/logout")
        self.limiter = FailureLimiter(self.settings.max_failures, self.settings.failure_window)
        self._owners: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    # --- first start -----------------------------------------------------------------

    def ensure_admin(self) -> None:
        """Create the first administrator from the settings, or refuse to start."""
        if self.store.count_admins():
            return
        s = self.settings
        if not s.admin_password:
            raise errors.invalid(
                "Authentication is on (TRACKLOG_AUTH=basic) but no administrator exists: "
                "set TRACKLOG_AUTH_ADMIN_USERNAME and TRACKLOG_AUTH_ADMIN_PASSWORD for the "
                "first start")
        from tracklog_auth_basic.store import check_password, check_username

        try:
            name = check_username(s.admin_username, "TRACKLOG_AUTH_ADMIN_USERNAME")
            password = check_password(s.admin_password, s.min_password_length,
                                      "TRACKLOG_AUTH_ADMIN_PASSWORD")
        except errors.TracklogError as exc:
            raise errors.invalid(exc.message) from None
        try:
            self.store.create_user(name, password, is_admin=True)
        except errors.TracklogError:  # the name exists: it becomes the administrator
            self.store.update_password(name, password)
            self.store.update_admin(name, True)
        log.warning("created the first administrator %r", name)

    # --- authentication --------------------------------------------------------------

    def authenticate(self, request: Any) -> Caller:
        header = request.headers.get("authorization", "")
        client = request.client.host if request.client else "unknown"
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise unauthenticated("Malformed Basic credentials.") from None
            username, sep, password = decoded.partition(":")
            if not sep or not username:
                raise unauthenticated("Malformed Basic credentials.")
            keys = ("user:" + username, "addr:" + client)
            self.limiter.check(*keys)
            user = self.store.authenticate(username, password)
            if user is None:
                self.limiter.failed(*keys)
                raise unauthenticated("Invalid username or password.")
            self.limiter.succeeded(keys[0])
            return Caller(user, self)
        if scheme == "bearer":
            key = "addr:" + client
            self.limiter.check(key)
            user = self.store.user_for_token(value.strip())
            if user is None:
                self.limiter.failed(key)
                raise unauthenticated("Invalid or expired token.")
            return Caller(user, self)
        if not header.strip():
            secret = session_secret(request)
            user = self.store.user_for_token(secret) if secret else None
            if user is not None:
                return Caller(user, self)
            if request.url.path in self.login_paths:
                return Caller(User(0, "", False), self, anonymous=True)
        raise unauthenticated("Authentication required: send HTTP Basic credentials or "
                              "'Authorization: Bearer <token>', or sign in at "
                              f"{self.login_paths[0]}.")

    # --- who owns what ---------------------------------------------------------------

    def _owner(self, kind: str, key: str) -> str | None:
        """The experiment id a run, logged model or trace belongs to (None when it does
        not exist). Cached: none of them ever moves to another experiment."""
        cached = self._owners.get((kind, key), "")
        if cached != "":
            return cached
        store = self.tracking
        if store is None:
            return None
        try:
            if kind == "run_id":
                owner = str(store.get_run(key).info.experiment_id)
            elif kind == "logged_model":
                owner = str(store.get_logged_model(key).experiment_id)
            elif kind == "trace_id":
                owner = str(store.get_trace_info(key).experiment_id)
            else:
                owner = str(store.get_experiment_by_name(key).experiment_id)
        except errors.TracklogError:
            return None  # the route answers "does not exist" itself
        except AttributeError:  # a store without traces or logged models
            return None
        with self._lock:
            if len(self._owners) > 100_000:
                self._owners.clear()
            if kind != "experiment_name":  # names can change; ids never move
                self._owners[(kind, key)] = owner
        return owner

    # --- authorization ---------------------------------------------------------------

    def permissions(self, user: User, resource_type: str, keys: set[str]
                    ) -> dict[str, Permission]:
        grants = self.store.effective(user, resource_type, sorted(keys))
        default = self.settings.default_permission
        return {k: grants.get(k, default) for k in keys}

    def allowed(self, caller: Caller, action: str, resource: dict[str, Any]) -> bool:
        if resource == {"auth_login": "1"}:
            return True
        if caller.anonymous:
            return False
        user = caller.user
        if user.is_admin:
            return True
        need = NEEDED.get(action, Permission.MANAGE)
        experiments: set[str] = set()
        models: set[str] = set()
        for key, value in resource.items():
            values = _strings(value)
            if key == "auth_self":
                continue
            if key == "auth_user":  # one's own account
                if values != [user.username]:
                    return False
            elif key == "experiment_id":
                if not values or not values[0]:
                    return False
                experiments.update(values)
            elif key == "experiment_ids":
                if action != "read":  # reads are narrowed to readable ones by the server
                    experiments.update(values)
            elif key in ("run_id", "run_ids", "logged_model", "trace_id", "trace_ids",
                         "experiment_name"):
                kind = {"run_ids": "run_id", "trace_ids": "trace_id"}.get(key, key)
                for v in values:
                    owner = self._owner(kind, v)
                    if owner is not None:
                        experiments.add(owner)
            elif key == "registered_model":
                if not values or not values[0]:
                    return False
                models.update(values)
            elif key == "artifact_path":
                # Only a path below an experiment's own folder (named by its id) says
                # what it touches; anything else (the root, an experiment's custom
                # location under another name) is for administrators.
                if not str(resource.get("experiment_id", "")).isdigit():
                    return False
            else:
                return False  # a resource this plugin does not know: administrators only
        if not resource or set(resource) <= {"auth_self"}:
            # Server-wide: reading (searches are filtered) and creating are for everyone
            # signed in; anything else (routes without a rule) for administrators.
            return action in ("read", "update")
        if experiments and min(self.permissions(user, EXPERIMENT, experiments).values()) < need:
            return False
        if models and min(self.permissions(user, REGISTERED_MODEL, models).values()) < need:
            return False
        return True

    def readable(self, caller: Caller, kind: str) -> tuple[frozenset[str] | None,
                                                            frozenset[str]] | None:
        user = caller.user
        if user.is_admin or kind not in (EXPERIMENT, REGISTERED_MODEL):
            return None
        grants = self.store.all_grants(user, kind)
        if self.settings.default_permission >= Permission.READ:
            hidden = frozenset(k for k, p in grants.items() if p < Permission.READ)
            return (None, hidden) if hidden else None
        return frozenset(k for k, p in grants.items() if p >= Permission.READ), frozenset()

    def created(self, caller: Caller, resource: dict[str, Any]) -> None:
        if "experiment_id" in resource:
            self.store.set_permission(USER, caller.user.id, EXPERIMENT,
                                      str(resource["experiment_id"]), Permission.MANAGE)
        elif "registered_model" in resource:
            name = str(resource["registered_model"])
            self.store.forget_resource(REGISTERED_MODEL, name)  # grants of a deleted one
            self.store.set_permission(USER, caller.user.id, REGISTERED_MODEL, name,
                                      Permission.MANAGE)


    def renamed(self, resource: dict[str, Any], renamed_to: dict[str, Any]) -> None:
        old, new = resource.get("registered_model"), renamed_to.get("registered_model")
        if old and new and old != new:
            self.store.move_resource(REGISTERED_MODEL, str(old), str(new))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


_runtimes: dict[int, Runtime] = {}
_runtimes_lock = threading.Lock()


def runtime_of(app: Any, config: Any) -> Runtime:
    """The application's runtime, created at its first use (normally at start)."""
    rt = getattr(app.state, "tracklog_auth", None)
    if rt is not None:
        return rt
    with _runtimes_lock:
        rt = getattr(app.state, "tracklog_auth", None)
        if rt is None:
            rt = Runtime(config, app.state.tracklog.store_or_none)
            app.state.tracklog_auth = rt
    return rt
