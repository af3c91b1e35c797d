"""Names a package exports and loads on first use, from one table.

A facade (:mod:`cdlib`, :mod:`cdlib.api`) keeps a table ``name -> module``; its
``__all__`` is the table's keys and its module ``__getattr__`` imports the module the
first time a name is asked for, so ``import cdlib`` stays cheap (no boto3, no Jinja
until used). A name whose module is ``cdlib.<name>`` is that module itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def loader(
    package: str, table: Mapping[str, str], moved: Mapping[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` exporting ``table``.

    ``moved`` names still resolve (from their module) but are not exported: names that
    moved to another facade and are kept so old imports work.
    """
    namespace = importlib.import_module(package).__dict__
    known = {**(moved or {}), **table}

    def __getattr__(name: str) -> Any:
        module = known.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        mod = importlib.import_module(module)
        value = mod if module == f"cdlib.{name}" else getattr(mod, name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *table})

    return __getattr__, __dir__
