"""The plugin's options: light, since ``tracklog --help`` collects them."""

from __future__ import annotations

from tracklog.options import Option

MODE = Option("auth", "mode", str, "",
              "'basic' switches authentication on; empty (the default) leaves it off.",
              env=("TRACKLOG_AUTH",))
ADMIN_USERNAME = Option("auth", "admin-username", str, "",
                        "Name of the first administrator, created at the first start.")
ADMIN_PASSWORD = Option("auth", "admin-password", str, "",
                        "Password of the first administrator (no default: required at the "
                        "first start).", env=("MLFLOW_AUTH_ADMIN_PASSWORD",))
DEFAULT_PERMISSION = Option("auth", "default-permission", str, "",
                            "Permission on resources nobody granted: READ (default), EDIT, "
                            "MANAGE or NO_PERMISSIONS.")
DATABASE_URI = Option("auth", "database-uri", str, "",
                      "Where users and permissions live (default: the tracking store's SQL "
                      "database, or a SQLite file beside a file store).")
CONFIG_PATH = Option("auth", "config-path", str, "",
                     "An MLflow basic_auth.ini ([mlflow] default_permission, database_uri, "
                     "admin_username, admin_password).", env=("MLFLOW_AUTH_CONFIG_PATH",))
MIN_PASSWORD_LENGTH = Option("auth", "min-password-length", int, 12,
                             "Shortest password accepted.", minimum=8)
MAX_FAILURES = Option("auth", "max-failures", int, 10,
                      "Failed sign-ins per user and per client address within "
                      "--auth-failure-window before further attempts are refused.", minimum=1)
FAILURE_WINDOW = Option("auth", "failure-window", int, 300,
                        "Seconds over which failed sign-ins are counted.", minimum=1)

ALL = (MODE, ADMIN_USERNAME, ADMIN_PASSWORD, DEFAULT_PERMISSION, DATABASE_URI, CONFIG_PATH,
       MIN_PASSWORD_LENGTH, MAX_FAILURES, FAILURE_WINDOW)
