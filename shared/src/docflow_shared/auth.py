"""API keys and tenants: who is calling, and whose documents they may see.

Keys are configured only as hashes (``sha256:<hex>``), never in clear, and a
presented key is compared with every configured hash in constant time. With
authentication off (the local default) every caller is the default tenant.

``python -m docflow_shared.auth new`` prints a fresh key and the hash to put
in ``DOCFLOW_API_KEYS``; ``hash KEY`` prints the hash of an existing key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HASH_PREFIX = "sha256:"
TENANT_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def hash_key(key: str) -> str:
    """The form in which a key is configured: ``sha256:<hex>``."""
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


class UnknownKeyError(LookupError):
    """No key, or a key that no tenant has."""


@dataclass(frozen=True)
class Authenticator:
    """Maps a presented API key to its tenant."""

    enabled: bool
    default_tenant: str
    # tenant -> hashes of its keys
    keys: Mapping[str, Sequence[str]]

    def __post_init__(self) -> None:
        for tenant, hashes in self.keys.items():
            for digest in hashes:
                if not digest.startswith(HASH_PREFIX) or len(digest) != len(HASH_PREFIX) + 64:
                    raise ValueError(
                        f"API key of tenant {tenant!r} must be configured as sha256:<64 hex>; "
                        "run `python -m docflow_shared.auth hash KEY`"
                    )
        if self.enabled and not self.keys:
            raise ValueError("authentication is on but no API keys are configured")

    def tenant_for(self, key: str | None) -> str:
        """The caller's tenant; ``UnknownKeyError`` when auth is on and the key is unknown."""
        if not self.enabled:
            return self.default_tenant
        if not key:
            raise UnknownKeyError("no API key")
        presented = hash_key(key).encode()
        found: str | None = None
        # Compare with every hash, so the time taken says nothing about which matched.
        for tenant, hashes in self.keys.items():
            for digest in hashes:
                if hmac.compare_digest(presented, digest.encode()):
                    found = tenant
        if found is None:
            raise UnknownKeyError("unknown API key")
        return found


INTERNAL_TOKEN_HEADER = "X-Docflow-Internal-Token"  # noqa: S105 (a header name)
"""The header that carries the internal token (``DOCFLOW_INTERNAL_TOKEN``)."""


def internal_token_valid(expected: str | None, presented: str | None) -> bool:
    """Whether ``presented`` is the internal token, compared in constant time; never
    when no token is configured (an internal route then answers nobody)."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    if argv[:1] == ["new"]:
        key = "dfk_" + secrets.token_urlsafe(32)
        print(f"key:  {key}\nhash: {hash_key(key)}")
        return 0
    if len(argv) == 2 and argv[0] == "hash":
        print(hash_key(argv[1]))
        return 0
    print("usage: python -m docflow_shared.auth new | hash KEY", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
