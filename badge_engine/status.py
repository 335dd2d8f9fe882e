"""Revocation and credential status: revoking, status lists, revocation lists.

A credential is revoked once, with a reason, and stays revoked. Verifiers learn of
it in three ways, all built from the same rows:

- OB 3.0 `BitstringStatusListEntry` (W3C Bitstring Status List v1.0): each
  credential owns one bit of a provider's list. The list is a signed
  `BitstringStatusListCredential` whose `encodedList` is the GZIP-compressed
  bitstring in base64url with the multibase prefix "u". Bit 0 is the most
  significant bit of the first byte. Each list contains 131,072 bits, the minimum that
  specification sets so that one bit says little about one person.
- OB 3.0 `1EdTechRevocationList`: a JSON document listing the ids of revoked
  credentials with their reasons.
- OB 2.0 `RevocationList`: the issuer's list of revoked assertion ids with reasons,
  and HTTP 410 for a revoked hosted assertion.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from badge_engine.db import dialect_insert, utcnow
from badge_engine.errors import BadgeEngineError, InvalidCredential
from badge_engine.models import (
    Credential,
    CredentialStatus,
    Provider,
    StatusListAllocation,
)
from badge_engine.ob3 import VC2_CONTEXT, format_timestamp
from badge_engine.urls import credential_url, issuer_profile_url

STATUS_LIST_BITS = 131_072
BITSTRING_ENTRY_TYPE = "BitstringStatusListEntry"
BITSTRING_CREDENTIAL_TYPE = "BitstringStatusListCredential"
REVOCATION_LIST_TYPE = "1EdTechRevocationList"
MAX_REASON_LENGTH = 1000
# Our encoded lists inflate to STATUS_LIST_BITS / 8 bytes. Larger lists from other
# issuers are accepted up to this many bytes and rejected above it.
MAX_DECODED_LIST_BYTES = 16 * 1024 * 1024


class AlreadyRevoked(BadgeEngineError):
    """The credential was revoked before; revocation happens once."""

    def __init__(self, public_id: str, revoked_at: datetime | None) -> None:
        self.public_id = public_id
        self.revoked_at = revoked_at
        super().__init__(
            f"Credential {public_id!r} was already revoked at {revoked_at}; a "
            "revocation cannot be repeated or changed."
        )


class InvalidStatusList(InvalidCredential):
    """A status list cannot be decoded or does not cover the requested index."""


@dataclass(frozen=True)
class CredentialRevoked:
    """Audit event: a credential was revoked, by whom and why."""

    provider_id: int
    credential_public_id: str
    reason: str
    revoked_at: datetime
    actor: str


def status_list_url(base_url: str, slug: str, list_number: int) -> str:
    return f"{issuer_profile_url(base_url, slug)}/status/{list_number}"


def revocation_list_url(base_url: str, slug: str) -> str:
    """Return the URL of the provider's 1EdTechRevocationList document."""
    return f"{issuer_profile_url(base_url, slug)}/revocations"


def revoke_credential(
    session: Session,
    credential: Credential,
    reason: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> CredentialRevoked:
    """Revoke a live credential with a reason, in the caller's transaction.

    Clearing `live_key` lets the learner earn the achievement again later. Raises
    AlreadyRevoked for a revoked credential and InvalidCredential for an empty or
    over-long reason.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidCredential(
            "A revocation needs a reason that verifiers can show, such as "
            "'Issued in error'.",
            credential_id=credential.public_id,
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidCredential(
            f"The revocation reason has {len(reason)} characters; the maximum is "
            f"{MAX_REASON_LENGTH}.",
            credential_id=credential.public_id,
        )
    if credential.status == CredentialStatus.REVOKED.value:
        raise AlreadyRevoked(credential.public_id, credential.revoked_at)

    revoked_at = now or utcnow()
    credential.status = CredentialStatus.REVOKED.value
    credential.live_key = None
    credential.revoked_at = revoked_at
    credential.revocation_reason = reason
    session.flush()

    return CredentialRevoked(
        provider_id=credential.provider_id,
        credential_public_id=credential.public_id,
        reason=reason,
        revoked_at=revoked_at,
        actor=actor,
    )


def allocate_status_index(session: Session, provider_id: int) -> int:
    """Take the provider's next free status list index, in the caller's transaction.

    The UPDATE locks the provider's allocation row until the transaction ends, so
    concurrent issuers get distinct indexes on PostgreSQL and SQLite alike.
    """
    taken = session.execute(
        update(StatusListAllocation)
        .where(StatusListAllocation.provider_id == provider_id)
        .values(next_index=StatusListAllocation.next_index + 1)
        .returning(StatusListAllocation.next_index)
    ).scalar()
    if taken is not None:
        return taken - 1

    try:
        with session.begin_nested():
            session.add(StatusListAllocation(provider_id=provider_id, next_index=1))
            session.flush()
    except IntegrityError:
        # Another transaction created the row first, so take the next index from it.
        return allocate_status_index(session, provider_id)

    return 0


def reserve_status_indexes(
    connection: Connection, provider_id: int, count: int
) -> range:
    """Reserve `count` consecutive status list indexes of a provider on `connection`.

    One UPDATE moves the provider's `next_index` past the block, so the row is
    locked only until `connection`'s transaction ends. Callers that reserve in a
    transaction of its own (see `StatusIndexPool`) let other workers of the provider
    reserve their blocks without waiting for a whole page of issuing.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")

    bump = (
        update(StatusListAllocation)
        .where(StatusListAllocation.provider_id == provider_id)
        .values(next_index=StatusListAllocation.next_index + count)
        .returning(StatusListAllocation.next_index)
    )
    end = connection.execute(bump).scalar()
    if end is None:
        # The provider's first index: create its row, unless a concurrent
        # transaction just did, then move past the block like every later call.
        connection.execute(
            dialect_insert(connection.dialect.name, StatusListAllocation)
            .values(provider_id=provider_id, next_index=0)
            .on_conflict_do_nothing(index_elements=["provider_id"])
        )
        end = connection.execute(bump).scalar_one()

    return range(end - count, end)


class StatusIndexPool:
    """Status list indexes of one provider, reserved ahead in blocks.

    A bulk issuer reserves a block in a short transaction of its own, before its
    page transaction starts, and then takes indexes from the block while it signs.
    Indexes stay unique across workers because each block comes from one UPDATE.
    Indexes reserved but never used (a page that rolled back, a pair that turned
    out to be held already, the rest of a block when the worker stops) stay unset
    bits forever. Verifiers only read the bits of credentials that exist, so a gap
    costs nothing but space in the list.
    """

    def __init__(self, provider_id: int, *, block_size: int = 1000) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        self.provider_id = provider_id
        self.block_size = block_size
        self._free: list[range] = []

    @property
    def available(self) -> int:
        return sum(len(block) for block in self._free)

    def reserve(self, session: Session, count: int) -> None:
        """Make at least `count` indexes available, committing any new block at once.

        The block is reserved on a connection of its own, so call this before the
        session writes: on SQLite, which admits one writer at a time, that
        connection would otherwise wait for the session's own write lock.
        """
        shortfall = count - self.available
        if shortfall <= 0:
            return

        size = max(shortfall, self.block_size)
        with session.get_bind().connect() as connection:
            block = reserve_status_indexes(connection, self.provider_id, size)
            connection.commit()
        self._free.append(block)

    def take(self, session: Session, count: int) -> list[int]:
        """Take `count` indexes, reserving the missing ones in the session's transaction.

        The fallback locks the provider's allocation row until the session commits,
        as `allocate_status_index` does, so callers that issue in bulk call
        `reserve` first.
        """
        shortfall = count - self.available
        if shortfall > 0:
            # Exactly the shortfall, so this call uses the whole block: a rollback
            # that undoes the reservation leaves none of it in the pool.
            connection = session.connection()
            self._free.append(
                reserve_status_indexes(connection, self.provider_id, shortfall)
            )

        taken: list[int] = []
        while len(taken) < count:
            block = self._free[0]
            needed = count - len(taken)
            taken.extend(block[:needed])
            rest = block[needed:]
            if rest:
                self._free[0] = rest
            else:
                self._free.pop(0)
        return taken


def bitstring_status_entry(base_url: str, slug: str, index: int) -> dict[str, Any]:
    """Build the `credentialStatus` of a credential that owns bit `index`."""
    list_url = status_list_url(base_url, slug, index // STATUS_LIST_BITS)
    return {
        "id": f"{list_url}#{index % STATUS_LIST_BITS}",
        "type": BITSTRING_ENTRY_TYPE,
        "statusPurpose": "revocation",
        "statusListIndex": str(index % STATUS_LIST_BITS),
        "statusListCredential": list_url,
    }


def revocation_list_entry(base_url: str, slug: str) -> dict[str, Any]:
    """Build a `credentialStatus` that points at the 1EdTechRevocationList."""
    return {"id": revocation_list_url(base_url, slug), "type": REVOCATION_LIST_TYPE}


def revoked_credentials(session: Session, provider: Provider) -> list[Credential]:
    return list(
        session.scalars(
            select(Credential)
            .where(
                Credential.provider_id == provider.id,
                Credential.status == CredentialStatus.REVOKED.value,
            )
            .order_by(Credential.id)
        )
    )


def status_list_exists(session: Session, provider_id: int, list_number: int) -> bool:
    """Tell whether the provider has handed out an index in list `list_number`.

    List 0 always exists, so a provider with no credentials yet still serves one.
    """
    if list_number == 0:
        return True
    next_index = session.scalar(
        select(StatusListAllocation.next_index).where(
            StatusListAllocation.provider_id == provider_id
        )
    )
    return next_index is not None and list_number * STATUS_LIST_BITS < next_index


def build_status_list_credential(
    session: Session,
    base_url: str,
    provider: Provider,
    issuer_id: str,
    list_number: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Build the unsigned BitstringStatusListCredential of one of a provider's lists."""
    first = list_number * STATUS_LIST_BITS
    indexes = session.scalars(
        select(Credential.status_list_index).where(
            Credential.provider_id == provider.id,
            Credential.status == CredentialStatus.REVOKED.value,
            Credential.status_list_index >= first,
            Credential.status_list_index < first + STATUS_LIST_BITS,
        )
    )
    list_url = status_list_url(base_url, provider.slug, list_number)
    return {
        "@context": [VC2_CONTEXT],
        "id": list_url,
        "type": ["VerifiableCredential", BITSTRING_CREDENTIAL_TYPE],
        "issuer": issuer_id,
        "validFrom": format_timestamp(now or utcnow()),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_status_list(
                [index - first for index in indexes], STATUS_LIST_BITS
            ),
        },
    }


def build_revocation_list(
    session: Session, base_url: str, provider: Provider, issuer_id: str
) -> dict[str, Any]:
    """Build the provider's 1EdTechRevocationList document."""
    return {
        "id": revocation_list_url(base_url, provider.slug),
        "issuer": issuer_id,
        "revokedCredentials": [
            {
                "id": credential_url(base_url, credential.public_id),
                "revocationReason": credential.revocation_reason,
            }
            for credential in revoked_credentials(session, provider)
        ],
    }


def encode_status_list(set_bits: list[int], size: int) -> str:
    """Encode a bitstring of `size` bits with `set_bits` set, as `encodedList`."""
    bits = bytearray((size + 7) // 8)
    for index in set_bits:
        bits[index // 8] |= 0x80 >> (index % 8)

    compressed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).decode("ascii").rstrip("=")


def status_bit(encoded_list: Any, index: int) -> bool:
    """Return whether bit `index` is set in an `encodedList`.

    Accepts the value with or without the multibase "u" prefix. Raises
    InvalidStatusList for a value that is not base64url GZIP, that inflates past
    MAX_DECODED_LIST_BYTES, or that is shorter than `index`.
    """
    if not isinstance(encoded_list, str) or not encoded_list:
        raise InvalidStatusList("encodedList: expected a base64url string.")

    text = encoded_list[1:] if encoded_list.startswith("u") else encoded_list
    try:
        compressed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as error:
        raise InvalidStatusList(f"encodedList: not base64url: {error}.") from error

    # wbits 16 + MAX_WBITS reads a GZIP member, and max_length stops a bomb early.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        bits = inflater.decompress(compressed, MAX_DECODED_LIST_BYTES + 1)
    except zlib.error as error:
        raise InvalidStatusList(f"encodedList: not GZIP data: {error}.") from error
    if len(bits) > MAX_DECODED_LIST_BYTES:
        raise InvalidStatusList(
            f"encodedList: inflates past {MAX_DECODED_LIST_BYTES} bytes."
        )
    if index < 0 or index // 8 >= len(bits):
        raise InvalidStatusList(
            f"statusListIndex {index} is outside the list of {len(bits) * 8} bits."
        )

    return bool(bits[index // 8] & (0x80 >> (index % 8)))
