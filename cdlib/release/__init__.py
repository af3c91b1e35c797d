"""Release strategies: blue/green, canary, rolling; lock, history, gates, analysis."""
