"""Alembic's entry for the status read model's migrations (run by ``SqlReadModel.migrate``)."""

from docflow_shared.sql import run_migrations_here

run_migrations_here()
