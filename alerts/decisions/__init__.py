"""The pure decisions of `alerts`: values and `now_ms` in, values out; no I/O, no clock.

`book.Book` is the one entry: `apply` (detections) and `tick` (timers) run lifecycle → mute →
grouping → routing/escalation → notices → storm folding and return a `Decision` holding
everything the SQL side saves and the live events to publish.
"""
