"""The vectorized rule engine: a rule set judged over every series at once, detections out.

`engine.Engine` is the entry point and the top of the package's imports (`Engine.rebuild` builds
its successor for a changed rule set or registry, carrying state over with `rebuild`; `backtest`
replays stored readings through a fresh one). Inside: `plan` (which series a rule matches),
`compile` (expression trees to numpy functions), `state` (columnar arrays), `groups` and
`rounds` (routing and ordering of a batch's readings), `scoring` (the detectors' rows, scores
and learning), `series_rule` and `area` (per-series and count_in rules), `transitions` (the
condition state machine) and `emit` (arrays to `rules.detection.Detection`).
"""
