"""A plugin with a misspelled hook name."""

from tracklog import hookimpl


@hookimpl
def register_comands(cli):
    pass
