"""Alembic environment, always driven programmatically (no ``alembic.ini``).

Online: :mod:`tracklog_store_sql.revisions` passes a live connection in
``config.attributes["connection"]``. Offline (``sql=True``): the attribute
``dialect_name`` says which dialect to render the migration SQL for.
"""

from alembic import context

from tracklog_store_sql.schema import metadata

config = context.config
if context.is_offline_mode():
    context.configure(
        dialect_name=config.attributes["dialect_name"],
        target_metadata=metadata,
        literal_binds=True,
        output_buffer=config.attributes.get("output_buffer"),
    )
else:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
with context.begin_transaction():
    context.run_migrations()
