"""The engine: plays, the parallel runner, handlers, results and events."""
