"""Request and response models of the HTTP API, one module per resource (pydantic at the wire
edge only); `common` holds what several share, `problems` the error bodies."""
