"""The ``cdlib`` command line."""
