"""The application layer: CLI, eval runner, reports and server. The only layer that reads environment
variables, prints, exits or speaks HTTP."""

__all__: list[str] = []
