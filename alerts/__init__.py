"""Alerts: `decisions/` (the pure core), `sql/` (tables, outbox, loading and saving what
the decisions need), `channels/` (dispatch); `service.AlertService` is the entry point."""
