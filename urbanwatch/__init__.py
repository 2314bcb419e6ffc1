"""The composition root: settings and the wiring of ingest → rules → alerts with the API.

The command line lives in `cli/`, the managed local services (Mosquitto, influxd) in
`services/`. No platform package imports it; only what stands outside (tests, `bench`) does.
"""
