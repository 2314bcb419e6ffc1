"""Errors raised by `simulators`.

SimulatorError
 └── PublishError(url, reason)   the broker could not be reached or refused the connection
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of the errors raised by `simulators`."""


class PublishError(SimulatorError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"MQTT broker {url}: {reason}")
        self.url = url
        self.reason = reason
