"""Service manager backends for the ``service`` task: systemd and supervisord.

Each backend turns the task's options and the host's facts into a list of steps (pure,
unit-tested) and the steps into one shell script.
"""
