"""``adapters token revoke|list`` as an operator reads them, on the server's own registry
and through a server with an admin token: revoking twice says it already was (when) and
writes nothing; unknown names are a one-line error."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result
from support.lifecycle import one_line_error
from support.server import ServedRegistry

from registry import NotFoundError, Registry
from registry.cli import main


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
    try:
        admin.revoke_token("absent")
    except NotFoundError as exc:
        assert "no token named 'absent'" in str(exc)
    else:
        raise AssertionError("revoking an unknown token succeeded")
