"""The one way cdlib parses YAML from users: PyYAML's safe loader with alias expansion capped.

A few hundred bytes of nested aliases (a "billion laughs" document) describe a value with
billions of nodes. PyYAML shares aliased nodes, so parsing is cheap, but everything that
walks the value afterwards (templating, redaction, copies) pays for every expanded node.
So the composed node graph is measured first, counting each alias as the whole subtree it
stands for, and a document that expands beyond :data:`MAX_EXPANDED_NODES` is refused
before anything is built from it. Inventories, group_vars/host_vars, vars files, ``-e
@file``, flag files and smoke suites all load through here.
"""

from __future__ import annotations

from typing import Any

import yaml

#: Nodes a document may stand for once its aliases are expanded. Far above what a real
#: inventory or flag file holds (10,000 hosts x 50 variables is 500,000), far below harm.
MAX_EXPANDED_NODES = 2_000_000


class AliasLimitError(yaml.MarkedYAMLError):
    """A document whose aliases expand beyond the limit (or refer to themselves)."""


def compose_yaml(text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """The node graph of a single-document ``text``, checked by :func:`check_expansion`."""
    ld = loader(text)
    try:
        node = ld.get_single_node()
        if node is not None:
            check_expansion(node)
        return node
    finally:
        ld.dispose()


def load_yaml_limited(text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """Parse ``text`` like ``yaml.load(text, Loader=loader)``, refusing alias bombs."""
    ld = loader(text)
    try:
        node = ld.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        return ld.construct_document(node)
    finally:
        ld.dispose()


def check_expansion(root: yaml.Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """The expanded size of ``root``; raises :class:`AliasLimitError` above ``limit``.

    Each distinct node is visited once (sizes are memoised), so measuring a bomb costs
    no more than reading it.
    """
    size: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        kids = _children(node)
        if leaving:
            active.discard(key)
            total = 1 + sum(size[id(k)] for k in kids)
            if total > limit:
                raise AliasLimitError(
                    problem=f"aliases expand to more than {limit:,} nodes (an alias bomb?)",
                    problem_mark=node.start_mark,
                )
            size[key] = total
            continue
        if key in size:
            continue
        if key in active:
            raise AliasLimitError(
                problem="a value contains itself (recursive alias)",
                problem_mark=node.start_mark,
            )
        active.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []
