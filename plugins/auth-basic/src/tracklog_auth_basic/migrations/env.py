"""Alembic environment of tracklog-auth-basic, driven programmatically: the connection
comes in ``config.attributes["connection"]``; the version table is the plugin's own."""

from alembic import context

from tracklog_auth_basic.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
