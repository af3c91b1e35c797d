"""Release installation on a host: deploy lock, on-host state, and the install scripts.

The playbook tasks live in :mod:`cdlib.tasks.release`; this package holds the pieces they
share: :mod:`.lock` (the per-app deploy lock), :mod:`.state` (the release log, bad marks,
which release is previous), :mod:`.build` (what a build tarball may not contain) and
:mod:`.scripts` (shell snippets that change the host).
"""
