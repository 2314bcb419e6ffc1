"""Dispatch: the channels (webhook — also carrying SMS/voice gateway requests —, MQTT, e-mail
over SMTP, the in-process live stream) and the dispatcher that drains the outbox through them."""
