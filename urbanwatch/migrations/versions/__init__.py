"""Alembic revisions, applied in order by `urbanwatch.database.migrate`."""
