"""Python inventories: a ``.py`` file that builds the inventory in code.

The module defines either a function ``inventory()`` (optionally taking one argument,
the extra vars given with ``-e``) or a mapping ``INVENTORY``. Either gives a mapping in
the YAML inventory shape::

    def inventory(extra_vars):
        size = int(extra_vars.get("web_count", 3))
        return {
            "all": {
                "vars": {"ansible_user": "deploy"},
                "children": {
                    "web": {"hosts": {f"web{i}": {"ansible_port": 22} for i in range(size)}},
                },
            }
        }

or in the ``ansible-inventory --list`` shape (a ``_meta.hostvars`` key), so the code of a
dynamic inventory script can be reused as is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cdlib.inventory.model import InventoryError
from cdlib.inventory.yaml_source import check_acyclic


def _where(path: Path, exc: BaseException) -> str:
    """``path:line`` of the deepest frame of ``exc`` that ran code from ``path``."""
    line: int | None = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    resolved = str(path.resolve())
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == resolved or frame.filename == str(path):
            line = frame.lineno
    return f"{path}:{line}" if line else str(path)


def run_python_inventory(path: Path, extra_vars: Mapping[str, Any]) -> Mapping[Any, Any]:
    """Import ``path`` and return the inventory document it defines."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    module_name = f"_cdlib_inventory_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path.resolve())
    if spec is None or spec.loader is None:
        raise InventoryError(f"{path}: cannot load as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs so that dataclasses and pickling inside it work.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        func = getattr(module, "inventory", None)
        if callable(func):
            params = inspect.signature(func).parameters
            document = func(dict(extra_vars)) if params else func()
        elif hasattr(module, "INVENTORY"):
            document = module.INVENTORY
        else:
            raise InventoryError(
                f"{path}: a Python inventory must define a function inventory() "
                "or a mapping INVENTORY"
            )
    except InventoryError:
        raise
    except Exception as exc:
        raise InventoryError(
            f"{_where(path, exc)}: the Python inventory failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.modules.pop(module_name, None)
    if not isinstance(document, Mapping):
        raise InventoryError(
            f"{path}: inventory() must return a mapping of groups, not {type(document).__name__}"
        )
    check_acyclic(dict(document), str(path))
    return document
