"""YAML tags for secrets in inventories and vars files: ``!vault``, ``!ssm``, ``!secretsmanager``.

::

    db_password: !vault |
      $ANSIBLE_VAULT;1.1;AES256
      6231...
    api_token: !ssm /shop/prod/api_token            # SSM SecureString, decrypted
    db_admin: !secretsmanager shop/prod/db#password # field of a JSON secret
    signing_key: !secretsmanager shop/prod/signing  # the whole secret string

The YAML loader only records what a tag asks for (a :class:`SecretRef` with its line);
:func:`resolve_secrets` then turns every reference into a :class:`~cdlib.secret.Secret`,
once the loading code knows the file and the vault passwords. So the tags compose with
any loader that registers :func:`register_secret_tags`, and a wrong password, a missing
parameter or a denied access fails while the inventory loads, before any host is touched,
naming ``file:line`` (never the value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from cdlib.secret import Secret
from cdlib.secret_stores import SecretLookupError, secrets_manager_value, ssm_parameter
from cdlib.vault.envelope import VaultError
from cdlib.vault.keyring import Keyring


@dataclass(frozen=True)
class SecretRef:
    """A secret a YAML tag asked for: ``kind`` (vault, ssm, secretsmanager) and its text."""

    kind: str
    text: str
    line: int


class SecretTagError(Exception):
    """A secret tag or its value could not be resolved; the message names file:line."""


def _scalar(kind: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> SecretRef:
        if not isinstance(node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"!{kind} takes a single text value", node.start_mark
            )
        return SecretRef(kind, str(loader.construct_scalar(node)), node.start_mark.line + 1)

    return construct


def register_secret_tags(loader: type[yaml.SafeLoader]) -> None:
    """Teach ``loader`` the ``!vault``, ``!ssm`` and ``!secretsmanager`` tags."""
    for kind in ("vault", "ssm", "secretsmanager"):
        loader.add_constructor(f"!{kind}", _scalar(kind))


def _resolve(ref: SecretRef, where: str, keyring: Keyring | None) -> Secret:
    at = f"{where}:{ref.line}"
    try:
        if ref.kind == "vault":
            plain, _ = (keyring or Keyring()).decrypt(ref.text, at)
            try:
                return Secret(plain.decode("utf-8"))
            except UnicodeDecodeError:
                raise SecretTagError(f"{at}: the decrypted !vault value is not UTF-8") from None
        if ref.kind == "ssm":
            return Secret(ssm_parameter(ref.text.strip()))
        secret_id, _, key = ref.text.strip().partition("#")
        return Secret(secrets_manager_value(secret_id, key or None))
    except VaultError as exc:
        message = str(exc)
        raise SecretTagError(message if message.startswith(at) else f"{at}: {message}") from None
    except SecretLookupError as exc:
        raise SecretTagError(f"{at}: {exc}") from None


def has_secret_refs(value: Any) -> bool:
    """Whether ``value`` (an acyclic YAML document) holds any :class:`SecretRef`."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, SecretRef):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def resolve_secrets(value: Any, where: str, keyring: Keyring | None) -> Any:
    """``value`` with every :class:`SecretRef` replaced, in place, by its :class:`Secret`.

    ``where`` names the file in errors. ``value`` must be acyclic (checked on loading).
    """
    if isinstance(value, SecretRef):
        return _resolve(value, where, keyring)
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            for k, v in item.items():
                if isinstance(v, SecretRef):
                    item[k] = _resolve(v, where, keyring)
                else:
                    stack.append(v)
        elif isinstance(item, list):
            for i, v in enumerate(item):
                if isinstance(v, SecretRef):
                    item[i] = _resolve(v, where, keyring)
                else:
                    stack.append(v)
    return value


def secret_leaves(value: Any, _memo: dict[int, Any] | None = None) -> Any:
    """A copy of ``value`` with every text inside made a :class:`Secret`.

    For a whole vault-encrypted file: its text values were meant to be secret. Numbers,
    booleans and nulls keep their type (as Ansible keeps them), so they are not masked.
    """
    memo = {} if _memo is None else _memo
    if isinstance(value, dict | list):
        # Shared parts (YAML aliases) stay shared, so a copy never expands them.
        if id(value) not in memo:
            if isinstance(value, dict):
                memo[id(value)] = {k: secret_leaves(v, memo) for k, v in value.items()}
            else:
                memo[id(value)] = [secret_leaves(v, memo) for v in value]
        return memo[id(value)]
    if isinstance(value, str):
        return Secret(value)
    return value
