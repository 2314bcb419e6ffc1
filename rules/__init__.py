"""The vectorized rule and anomaly engine: a pure core (arrays and ``now`` in, detections out).

- `rules.language`: the rule language (grammar, expression tree, rule model, rule files and the
  shipped pack's upgrade into an operators' copy);
- `rules.engine`: evaluation of a rule set over every series at once (compiled expressions,
  columnar state, rounds, transitions, area rules, rebuilds, backtests);
- `rules.detectors`: vectorized streaming anomaly detectors;
- `rules.oracles`: slow scalar reference implementations that tests check the vectorized code
  against (never used in production);
- `rules.detection` (`Detection`, `Severity`, `Category`) and `rules.errors`: the types other
  packages use.
"""
