"""The composition root: settings, CLI, managed services and wiring. Nothing imports it."""
