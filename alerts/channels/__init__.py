"""Dispatch channels: webhook, MQTT, and the in-process live event stream."""
