"""Who is calling: principals, roles, tokens; enforced by the dependencies in `api.deps`."""
