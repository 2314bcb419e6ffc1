"""Alert lifecycle, incidents, silences, routing, escalation and dispatch."""
