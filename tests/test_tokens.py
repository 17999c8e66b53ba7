"""``adapters token revoke|list`` as an operator reads them, on the server's own registry
and through a server with an admin token: revoking twice says it already was (when) and
writes nothing; unknown names are a one-line error."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner, Result
from support.lifecycle import one_line_error
from support.server import ServedRegistry

from registry import NotFoundError, Registry
from registry.cli import main
from registry.security.tokens import create_token

SECOND = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def revocations(registry: Registry, name: str) -> int:
    events = registry.log(actions=("token-revoke",))
    return sum(1 for e in events if e.details.get("token") == name)


def test_revoking_a_revoked_token_says_when_and_changes_nothing() -> None:
    with Registry.open(create=True) as registry:
        registry.create_token("ci", "writer")
    first = run("token", "revoke", "ci")
    assert first.exit_code == 0 and first.stdout == "revoked token 'ci'\n"
    with Registry.open() as registry:
        (token,) = registry.tokens()
        assert token.revoked_at is not None
        again = registry.revoke_token("ci")
        assert not again.changed and again.token.revoked_at == token.revoked_at
        stamp = token.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    second = run("token", "revoke", "ci")
    assert second.exit_code == 0 and second.stdout == ""
    assert second.stderr == (f"note: token 'ci' was already revoked at {stamp}; nothing changed\n")
    as_json = json.loads(run("token", "revoke", "ci", "--json").stdout)
    assert as_json["changed"] is False and as_json["revoked_at"] == stamp
    with Registry.open() as registry:
        assert revocations(registry, "ci") == 1
        (token,) = registry.tokens()
        assert (
            token.revoked_at is not None
            and token.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ") == stamp
        )


def test_revoking_an_unknown_token_is_a_one_line_error() -> None:
    Registry.open(create=True).close()
    result = CliRunner().invoke(main, ["token", "revoke", "nobody"])
    assert result.exit_code == 1 and one_line_error(result)
    assert "no token named 'nobody'" in result.stderr and "adapters token list" in result.stderr


def test_revoking_twice_through_the_server(served: ServedRegistry) -> None:
    admin = Registry.open(served.url, token=served.tokens["admin"])
    admin.create_token("twice", "reader")
    first = admin.revoke_token("twice")
    assert first.changed and first.token.revoked_at is not None
    again = admin.revoke_token("twice")
    assert not again.changed and again.token.revoked_at == first.token.revoked_at
    env = {"ADAPTERS_TOKEN": served.tokens["admin"]}
    result = run("--registry", served.url, "token", "revoke", "twice", env=env)
    assert result.exit_code == 0 and "already revoked at" in result.stderr
    assert revocations(admin, "twice") == 1
    # The remote listing renders as the server's own registry does, to the second.
    admin.create_token("expiring", "reader", expires="2w")
    listing = run("--registry", served.url, "token", "list", env=env)
    assert listing.exit_code == 0, listing.output
    rows = listed_rows(listing.stdout)
    assert rows["twice"][-1] == "revoked" and SECOND.match(rows["expiring"][4])
    if served.database_url.startswith("sqlite"):
        local_env = {"ADAPTERS_DATABASE_URL": served.database_url}
        local = run("--registry", str(served.home), "token", "list", env=local_env)
        assert local.stdout == listing.stdout
    try:
        admin.revoke_token("absent")
    except NotFoundError as exc:
        assert "no token named 'absent'" in str(exc)
    else:
        raise AssertionError("revoking an unknown token succeeded")


def listed_rows(output: str) -> dict[str, list[str]]:
    """``adapters token list``'s rows by token name (cells split on runs of spaces)."""
    header, _rule, *rows = output.splitlines()
    assert header.split() == ["NAME", "ROLE", "NAMESPACE", "CREATED", "EXPIRES", "STATE"]
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", row) for row in rows)}


def test_token_list_shows_times_to_the_second_in_utc() -> None:
    with Registry.open(create=True) as registry:
        registry.create_token("ci", "writer", namespace="team", expires="30d")
        registry.create_token("forever", "reader")
        registry.create_token("gone", "admin")
        registry.revoke_token("gone")
        # Made directly: the API refuses an expiry in the past.
        past = datetime.now(UTC) - timedelta(hours=1, microseconds=1234)
        create_token(registry.catalog.engine, "old", "reader", expires_at=past)
    result = run("token", "list")
    assert result.exit_code == 0, result.output
    rows = listed_rows(result.stdout)
    assert {name: cells[-1] for name, cells in rows.items()} == {
        "ci": "active", "forever": "active", "gone": "revoked", "old": "expired",
    }  # fmt: skip
    assert rows["forever"][2:5] == ["-", rows["forever"][3], "-"]
    for cells in rows.values():
        for cell in cells[3:5]:
            assert cell == "-" or SECOND.match(cell), cells
    # --json keeps the same instants in ISO 8601, and the table shows exactly those.
    exact = {t["name"]: t for t in json.loads(run("token", "list", "--json").stdout)}
    for name, cells in rows.items():
        assert cells[3] == exact[name]["created_at"]
        assert cells[4] == (exact[name]["expires_at"] or "-")
    assert datetime.fromisoformat(exact["old"]["expires_at"]) == past.replace(microsecond=0)
