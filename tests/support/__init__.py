"""Test helpers shared across packages."""
