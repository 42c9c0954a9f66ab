"""Permissions, MLflow's: READ < EDIT < MANAGE, and NO_PERMISSIONS."""

from __future__ import annotations

from enum import IntEnum


class Permission(IntEnum):
    NO_PERMISSIONS = 0
    READ = 1
    EDIT = 2
    MANAGE = 3

    @classmethod
    def parse(cls, name: str) -> Permission:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(name) from None

    @classmethod
    def names(cls) -> str:
        return ", ".join(p.name for p in cls)


#: The permission each route action needs (MLflow: deleting needs MANAGE).
NEEDED = {
    "read": Permission.READ,
    "update": Permission.EDIT,
    "delete": Permission.MANAGE,
    "manage": Permission.MANAGE,
}

EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
RESOURCE_TYPES = (EXPERIMENT, REGISTERED_MODEL)
