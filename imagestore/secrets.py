"""Encryption at rest of registry secrets (Fernet: AES-128-CBC with HMAC-SHA256).

The key is derived from CREDENTIALS_KEY, or SECRET_KEY when that is unset, so a
database dump alone reveals no password.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    material = (settings.CREDENTIALS_KEY or settings.SECRET_KEY).encode()
    key = hashlib.sha256(b"imagestore registry credentials\0" + material).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("a stored registry secret cannot be decrypted (was the key changed?)") from None
