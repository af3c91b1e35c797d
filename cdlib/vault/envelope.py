"""Ansible Vault's encrypted format (``$ANSIBLE_VAULT;1.1;AES256`` and ``1.2`` with a vault id).

The format is Ansible's, documented in its "Vault format" page; the code is cdlib's:

* a random 32-byte salt; PBKDF2-HMAC-SHA256 with 10,000 iterations turns the password
  and salt into 80 bytes: a 32-byte AES key, a 32-byte HMAC key and a 16-byte counter;
* the plaintext, PKCS#7-padded to the AES block, is encrypted with AES-256 in CTR mode;
* HMAC-SHA256 (with the second key) over the ciphertext authenticates it;
* ``hex(salt) \\n hex(hmac) \\n hex(ciphertext)`` is hexlified once more, cut into lines of
  80 characters, under the header line ``$ANSIBLE_VAULT;1.1;AES256`` (or
  ``$ANSIBLE_VAULT;1.2;AES256;LABEL`` when the password has a vault id other than
  ``default``).

A wrong password fails the HMAC check, so nothing is ever decrypted with it.
"""

from __future__ import annotations

import binascii
import hmac
import os
from dataclasses import dataclass
from hashlib import sha256

HEADER = "$ANSIBLE_VAULT"
DEFAULT_ID = "default"
_ITERATIONS = 10_000
_LINE = 80


class VaultError(Exception):
    """Vault text that cannot be read: bad envelope, no password, or a wrong password."""


class VaultFormatError(VaultError):
    """Text that claims to be vault-encrypted but is not a valid envelope."""


class VaultPasswordError(VaultError):
    """No given password opens the vault text (or no password was given at all)."""


@dataclass(frozen=True)
class Envelope:
    """The parsed header and payload of vault text."""

    version: str
    cipher: str
    label: str | None
    payload: bytes


def is_encrypted(data: str | bytes) -> bool:
    """Whether ``data`` starts with the vault header (``$ANSIBLE_VAULT;``)."""
    raw = data.encode() if isinstance(data, str) else data
    return raw.lstrip().startswith(HEADER.encode() + b";")


def parse(data: str | bytes) -> Envelope:
    """Split vault text into header fields and the binary payload."""
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    lines = text.strip().splitlines()
    if not lines or not is_encrypted(lines[0]):
        raise VaultFormatError("not vault-encrypted text (no $ANSIBLE_VAULT header)")
    fields = [f.strip() for f in lines[0].strip().split(";")]
    if len(fields) < 3 or fields[1] not in ("1.1", "1.2"):
        raise VaultFormatError(f"unsupported vault header {lines[0].strip()!r}")
    if fields[2] != "AES256":
        raise VaultFormatError(f"unsupported vault cipher {fields[2]!r} (only AES256)")
    label = fields[3] if fields[1] == "1.2" and len(fields) > 3 and fields[3] else None
    try:
        payload = binascii.unhexlify("".join(line.strip() for line in lines[1:]))
    except (binascii.Error, ValueError):
        raise VaultFormatError("vault payload is not hexadecimal (damaged file?)") from None
    return Envelope(fields[1], fields[2], label, payload)


def _keys(password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    # cryptography is imported on first use: a run without vault data does not pay for it.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt, iterations=_ITERATIONS)
    derived = kdf.derive(password)
    return derived[:32], derived[32:64], derived[64:]


def encrypt(plaintext: bytes, password: bytes, label: str | None = None) -> str:
    """Vault text for ``plaintext`` (format 1.2 with ``label`` unless it is ``default``)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    salt = os.urandom(32)
    aes_key, mac_key, counter = _keys(password, salt)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CTR(counter)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    mac = hmac.new(mac_key, ciphertext, sha256).hexdigest().encode()
    inner = b"\n".join([binascii.hexlify(salt), mac, binascii.hexlify(ciphertext)])
    body = binascii.hexlify(inner).decode()
    if label and label != DEFAULT_ID:
        header = f"{HEADER};1.2;AES256;{label}"
    else:
        header = f"{HEADER};1.1;AES256"
    lines = [body[i : i + _LINE] for i in range(0, len(body), _LINE)]
    return "\n".join([header, *lines]) + "\n"


def try_decrypt(envelope: Envelope, password: bytes) -> bytes | None:
    """The plaintext of ``envelope`` with ``password``, or None when it is the wrong one."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    parts = envelope.payload.split(b"\n")
    if len(parts) != 3:
        raise VaultFormatError("vault payload does not hold salt, HMAC and ciphertext")
    try:
        salt = binascii.unhexlify(parts[0])
        ciphertext = binascii.unhexlify(parts[2])
    except (binascii.Error, ValueError):
        raise VaultFormatError("vault payload is not hexadecimal (damaged file?)") from None
    aes_key, mac_key, counter = _keys(password, salt)
    expected = hmac.new(mac_key, ciphertext, sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, parts[1].strip()):
        return None
    decryptor = Cipher(algorithms.AES(aes_key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise VaultFormatError("vault plaintext has bad padding (damaged file?)") from None
