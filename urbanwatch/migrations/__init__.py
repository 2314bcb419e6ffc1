"""Alembic migrations of urbanwatch's SQL schema (shipped as package data)."""
