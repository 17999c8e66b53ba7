"""``--expires`` of ``adapters token create``: durations and ISO dates, and a clear
one-line refusal for anything else, including dates so far ahead that they would
overflow a datetime or the catalog (never a traceback, never a 500 from the server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support.server import ServedRegistry

from registry import ArgumentError, Registry
from registry.security.tokens import parse_expiry

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW + timedelta(days=30)),
        ("12h", NOW + timedelta(hours=12)),
        ("2w", NOW + timedelta(weeks=2)),
        (" 30d ", NOW + timedelta(days=30)),
        ("5000w", NOW + timedelta(weeks=5000)),
        ("2030-01-01", datetime(2030, 1, 1, tzinfo=UTC)),
        ("2030-01-01T10:00:00+02:00", datetime(2030, 1, 1, 8, tzinfo=UTC)),
        ("never", None),
        (None, None),
    ],
)
def test_accepted_expiries(text: str | None, expected: datetime | None) -> None:
    assert parse_expiry(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0d", "in the future"),
        ("2020-01-01", "in the past"),
        ("garbage", "neither a duration"),
        ("", "neither a duration"),
        ("1.5d", "neither a duration"),
        ("500000w", "100 years"),
        ("9999999d", "100 years"),
        ("999999999999999999h", "100 years"),
        ("9999-12-31T23:59:59-05:00", "100 years"),
        ("2200-01-01", "100 years"),
    ],
)
def test_refused_expiries_say_why_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ArgumentError, match=says) as caught:
        parse_expiry(text, NOW)
    assert "\n" not in str(caught.value)


def test_a_far_expiry_is_a_400_from_the_server_not_a_500(served: ServedRegistry) -> None:
    with Registry.open(served.url, token=served.tokens["admin"]) as admin:
        for text in ("500000w", "9999-12-31T23:59:59-05:00"):
            with pytest.raises(ArgumentError, match="100 years"):
                admin.create_token("far-ahead", "reader", expires=text)
        assert "far-ahead" not in {t.name for t in admin.tokens()}
