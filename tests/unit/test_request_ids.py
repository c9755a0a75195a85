"""New X-Request-IDs (http/request_log.py, RequestIds) are UUID4s as `str(uuid.uuid4())`
writes them, never repeated, across the refills of the random buffer."""

from __future__ import annotations

import uuid
from collections import Counter

from authserver.http.request_log import RequestIds


def test_new_request_ids_are_distinct_version_4_uuids_in_their_canonical_text() -> None:
    ids = RequestIds()
    made = [ids.new() for _ in range(20_000)]  # 78 refills of the 256-id buffer
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    # The variant digit keeps two random bits: all four values turn up, none dominates.
    variant_digits = Counter(text[19] for text in made)
    assert set(variant_digits) == set("89ab")
    assert max(variant_digits.values()) < 0.3 * len(made)


def test_a_safe_incoming_id_is_kept_and_an_unsafe_one_replaced() -> None:
    ids = RequestIds()
    assert ids.for_request(b"lb-7f3a.01_Z") == "lb-7f3a.01_Z"
    assert uuid.UUID(ids.for_request(b"bad id")).version == 4
    assert uuid.UUID(ids.for_request(None)).version == 4
