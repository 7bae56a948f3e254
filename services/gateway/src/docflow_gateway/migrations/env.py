"""Alembic's entry for the gateway registry's migrations (run by ``SqlRegistry.migrate``)."""

from docflow_shared.sql import run_migrations_here

run_migrations_here()
