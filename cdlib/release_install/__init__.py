"""Deprecated: the old name of :mod:`cdlib.install` (renamed in 0.x; see CHANGELOG.md).

``import cdlib.release_install.lock`` and the other old submodule paths still work: each
one is the module of :mod:`cdlib.install` itself, not a copy. New code imports
:mod:`cdlib.install`.
"""

import sys

from cdlib.install import account, build, lock, scripts, state

for _module in (account, build, lock, scripts, state):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module
