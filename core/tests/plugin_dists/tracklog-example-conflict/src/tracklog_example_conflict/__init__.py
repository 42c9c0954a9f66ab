"""A plugin that claims a scheme the core already serves."""

from tracklog import hookimpl


@hookimpl
def register_artifact_repositories(register):
    register("file", lambda uri: None)
