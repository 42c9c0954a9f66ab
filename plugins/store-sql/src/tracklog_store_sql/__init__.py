"""tracklog-store-sql: the SQL backend store (SQLite, PostgreSQL, MySQL/MariaDB, MSSQL)
on SQLAlchemy and Alembic."""
