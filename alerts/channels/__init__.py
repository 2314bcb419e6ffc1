"""Dispatch: the channels (webhook, MQTT, the in-process live stream) and the dispatcher
that drains the outbox through them."""
