"""Encryption at rest for private keys and tokens.

Fernet (AES-128-CBC with HMAC-SHA256, from the cryptography package) behind a
MultiFernet, so a new key can be put in front while old ciphertexts still decrypt.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretDecryptionError(RuntimeError):
    """A stored secret could not be decrypted with any configured key."""


class Vault:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("Vault needs at least one encryption key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: bytes | str) -> bytes:
        if isinstance(plaintext, str):
            plaintext = plaintext.encode()
        return self._fernet.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes, *, what: str = "secret") -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken:
            raise SecretDecryptionError(
                f"could not decrypt the stored {what} with any configured encryption "
                "key; restore the encryption key file from backup, or list the old "
                "key after the new one in HPASS_ENCRYPTION_KEYS"
            ) from None

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt under the newest key."""
        return self._fernet.rotate(ciphertext)
