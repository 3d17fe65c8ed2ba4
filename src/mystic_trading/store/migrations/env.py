"""Alembic environment: runs on the connection the store hands over, inside its transaction.

Both backends have transactional DDL, so a migration that fails leaves the schema as it was.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
