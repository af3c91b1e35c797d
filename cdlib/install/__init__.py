"""Installing releases on a host: app layout, deploy lock, on-host state, install scripts.

This is the on-host side; release strategies (traffic, canaries) are :mod:`cdlib.release`.
The playbook tasks live in :mod:`cdlib.tasks.install`, :mod:`cdlib.tasks.install_rollback`
and :mod:`cdlib.tasks.mark_bad`; this package holds the pieces they share:
:mod:`.layout` (the app's directories and log records), :mod:`.lock` (the per-app deploy
lock), :mod:`.state` (the release log, bad marks, which release is previous),
:mod:`.build` (what a build tarball may not contain) and :mod:`.scripts` (shell snippets
that change the host).
"""
