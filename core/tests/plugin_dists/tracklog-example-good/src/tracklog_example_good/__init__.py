"""A small well-behaved plugin: an artifact scheme and a CLI command."""

import click

from tracklog import hookimpl


def _factory(uri):
    from tracklog.artifacts.local import LocalArtifactRepository

    return LocalArtifactRepository(uri[len("example://") :])


@hookimpl
def register_artifact_repositories(register):
    register("example", _factory)


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("name")
    def hello(name):
        """Greet NAME (added by tracklog-example-good)."""
        click.echo(f"hello {name} from a plugin")
