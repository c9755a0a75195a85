"""`keys list | rotate [--now] | revoke KID | export-jwks` (SPEC "Signing keys"), and `keys
rekey` (KEK rotation).

Every one of them proves first that the key-encryption keys open the stored keys: a wrong or
malformed KEY_ENCRYPTION_KEY (or a missing `keys/kek`) stops it with one line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from authserver.cli import common
from authserver.cli.exits import expected_errors
from authserver.cli.output import iso, json_option, print_json, print_rows

if TYPE_CHECKING:
    from authserver.keys.kek import KeyEncryptionKeys
    from authserver.keys.lifecycle import Revocation, Rotation
    from authserver.keys.rekey import Rekey
    from authserver.models import SigningKeyRecord
    from authserver.settings import Settings
    from authserver.store.db import Database


@click.group()
def keys() -> None:
    """Signing keys."""


@keys.command("list")
@json_option("A JSON list of {kid, state, alg, size, created_at, activated_at, retired_at}.")
def keys_list(as_json: bool) -> None:
    """Public facts about each key; never private material.

    The table adds whether the key is in the JWKS now and when it ended (retired or revoked).
    """
    from authserver.clock import utc_now

    settings = common.load()
    records, _keks = _verified_keys(settings)
    if as_json:
        rows = [
            {
                "kid": key.kid,
                "state": key.state,
                "alg": key.alg,
                "size": key.size,
                "created_at": iso(key.created_at),
                "activated_at": iso(key.activated_at),
                "retired_at": iso(key.retired_at),
            }
            for key in records
        ]
        print_json(rows)
        return
    from authserver.keys.ring import is_published

    now = utc_now()
    table = [
        {
            "kid": key.kid,
            "state": key.state,
            "alg": key.alg,
            "size": key.size,
            "published": is_published(key, settings, now),
            "created_at": iso(key.created_at),
            "activated_at": iso(key.activated_at),
            "ended_at": iso(key.retired_at or key.revoked_at),
        }
        for key in records
    ]
    columns = ["kid", "state", "alg", "size", "published", "created_at", "activated_at", "ended_at"]
    print_rows(table, False, columns)


@keys.command("rotate")
@click.option(
    "--now",
    "force",
    is_flag=True,
    help="Emergency: promote the next key even if it was published less than JWKS_MAX_AGE ago.",
)
@json_option('One JSON object {"current": KID, "retired": KID, "next": KID, "early_by": SECONDS}.')
def keys_rotate(force: bool, as_json: bool) -> None:
    """Promote the next key to current, retire the current one, create a new next key.

    Refused while the next key has been published for less than JWKS_MAX_AGE, so that no
    resource server with a cached JWKS meets an unknown kid.
    """
    from authserver.clock import utc_now
    from authserver.keys import lifecycle
    from authserver.observability.audit import operator, record

    settings = common.load()
    keks = _operator_kek(settings)

    async def work(db: Database) -> Rotation:
        rotation = await lifecycle.rotate(db, settings, keks, utc_now(), force=force)
        await record(db, lifecycle.rotation_event(rotation, operator(), forced=force), utc_now())
        return rotation

    rotation = common.run(settings, work)
    if as_json:  # stderr stays one JSON object: `early_by` says it
        print_json(
            {
                "current": rotation.current_kid,
                "retired": rotation.retired_kid,
                "next": rotation.next_kid,
                "early_by": rotation.early_by,
            }
        )
        return
    if rotation.early_by:
        _warn_early(rotation, settings)
    click.echo(f"current: {rotation.current_kid} (signs new tokens)")
    click.echo(f"retired: {rotation.retired_kid} (published until its last token has expired)")
    click.echo(f"next:    {rotation.next_kid} (published now, promoted at the next rotation)")
    _echo_pickup(settings)


# A kid is base64url, so one in 64 starts with "-": read such a word as the KID, not an option.
@keys.command("revoke", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
@json_option(
    'One JSON object {"revoked": KID, "previous_state": ..., "current": KID or null, '
    '"next": KID or null}.'
)
def keys_revoke(kid: str, as_json: bool) -> None:
    """Compromised key: unpublish KID at once. Revoking the current key promotes the next key
    (and creates a new next key) in the same step, so signing never stops. Exit status 3 if no
    key has that kid."""
    from authserver.clock import utc_now
    from authserver.keys import lifecycle
    from authserver.observability.audit import AuditEvent, operator, record

    settings = common.load()
    keks = _operator_kek(settings)

    async def work(db: Database) -> Revocation:
        revocation = await lifecycle.revoke(db, settings, keks, kid, utc_now())
        detail = {"previous_state": revocation.previous_state}
        if revocation.promoted is not None:
            detail["now_current"] = revocation.promoted.current_kid
        event = AuditEvent("key.revoked", "success", actor=operator(), subject=kid, detail=detail)
        await record(db, event, utc_now())
        return revocation

    revocation = common.run(settings, work)
    promoted = revocation.promoted
    if as_json:
        print_json(
            {
                "revoked": revocation.kid,
                "previous_state": revocation.previous_state,
                "current": promoted.current_kid if promoted is not None else None,
                "next": promoted.next_kid if promoted is not None else revocation.new_next_kid,
            }
        )
        return
    click.echo(f"revoked: {revocation.kid} (was {revocation.previous_state}; no longer published)")
    if promoted is not None:
        if promoted.early_by:
            _warn_early(promoted, settings)
        click.echo(f"current: {promoted.current_kid} (signs new tokens)")
        click.echo(f"next:    {promoted.next_kid}")
        click.echo(
            "tokens signed with the revoked key no longer verify at resource servers that "
            "refetch the JWKS; users of those tokens must refresh"
        )
    elif revocation.new_next_kid is not None:
        click.echo(f"next:    {revocation.new_next_kid}")
    _echo_pickup(settings)


@keys.command("export-jwks")
@json_option("Accepted for uniformity: the JWKS is JSON already; errors become JSON too.")
def keys_export_jwks(as_json: bool) -> None:
    """Print the public JWKS (what /.well-known/jwks.json serves), e.g. to pin or pre-seed
    resource servers. Public keys only, each computed from its private key (so it needs the
    KEK) and refused if its row was altered."""
    from authserver.clock import utc_now
    from authserver.keys.ring import public_jwks

    settings = common.load()
    records, keks = _verified_keys(settings)
    with expected_errors():
        published = public_jwks(records, settings, keks, utc_now())
    click.echo(json.dumps({"keys": published}, indent=2))


@keys.command("rekey")
@json_option(
    'One JSON object {"kek_id": ..., "keys": N, "resealed": N, "from_kek_ids": [...]}: KEK ids '
    "only, public fingerprints."
)
def keys_rekey(as_json: bool) -> None:
    """KEK rotation: re-encrypt every private signing key under KEY_ENCRYPTION_KEY (or the KEK
    file's first line), opening each with the KEK that sealed it, KEY_ENCRYPTION_KEY or one of
    PREVIOUS_KEY_ENCRYPTION_KEYS (the file's further lines).

    One transaction: every key moves, or none (a key that does not open stops it before
    anything is written). The keys themselves, the JWKS and every token stay as they are;
    running servers keep serving. Prints KEK ids (public fingerprints), never a key. Run it
    again to check: it then has nothing to do. See the KEK rotation runbook.
    """
    from authserver.clock import utc_now
    from authserver.keys import rekey as key_rekey
    from authserver.observability.audit import operator, record

    settings = common.load()
    keks = _operator_kek(settings)

    async def work(db: Database) -> Rekey:
        result = await key_rekey.rekey(db, keks)
        if result.resealed:
            await record(db, key_rekey.rekey_event(result, operator()), utc_now())
        return result

    result = common.run(settings, work)
    if as_json:
        print_json(
            {
                "kek_id": result.kek_id,
                "keys": result.keys,
                "resealed": result.resealed,
                "from_kek_ids": list(result.from_kek_ids),
            }
        )
        return
    if not result.resealed:
        click.echo(
            f"all {result.keys} signing keys are already sealed under KEK {result.kek_id} "
            "(KEY_ENCRYPTION_KEY); nothing to do"
        )
        return
    click.echo(
        f"re-encrypted {result.resealed} of {result.keys} signing keys under KEK {result.kek_id} "
        f"(KEY_ENCRYPTION_KEY); they were sealed under KEK {', '.join(result.from_kek_ids)}"
    )
    click.echo(
        "no key needs the previous KEK any more: remove it from PREVIOUS_KEY_ENCRYPTION_KEYS or "
        f"the KEK file, once every serving process has KEK {result.kek_id}"
    )


def _verified_keys(settings: Settings) -> tuple[list[SigningKeyRecord], KeyEncryptionKeys]:
    """The stored keys, once the KEKs have been shown to open every one of them, and the KEKs."""
    from authserver.keys.verification import verify_keks
    from authserver.store import keys as key_store

    keks = _operator_kek(settings)
    records = common.run(settings, key_store.list_keys)
    with expected_errors():
        verify_keks(records, keks)
    return records, keks


def _operator_kek(settings: Settings) -> KeyEncryptionKeys:
    """The KEKs, never created by an operator command: a missing file means the wrong directory
    or host, and a fresh KEK would only make keys no server can open."""
    from authserver.keys.kek import load_keks

    with expected_errors():
        return load_keks(settings, create=False)


def _warn_early(rotation: Rotation, settings: Settings) -> None:
    click.echo(
        f"warning: --now promoted {rotation.current_kid} {rotation.early_by} s before it had "
        f"been published for JWKS_MAX_AGE ({settings.jwks_max_age} s): a resource server whose "
        f"cached JWKS predates it may reject the new tokens for up to {rotation.early_by} s, "
        "unless it refetches on an unknown kid (authserver.verify does)",
        err=True,
    )


def _echo_pickup(settings: Settings) -> None:
    click.echo(
        "every serving process applies this within KEYS_REFRESH_INTERVAL "
        f"({settings.keys_refresh_interval:g} s)"
    )
