"""The rule language: what a rule says and how rule files are read, edited and written.

Expressions are parsed by a restricted grammar (`parse`) into a typed tree (`ast`), never
evaluated by Python; `model.Rule` is a validated rule and `loader` reads rule files. `rulefile`
edits the rule file the platform runs (`ruletext` keeps the comments of untouched rules), and
`pack_upgrade` merges a newly shipped pack into the operators' copy. Nothing here evaluates
readings: that is `rules.engine`.
"""
