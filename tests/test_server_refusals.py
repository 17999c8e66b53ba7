"""How the server words a refusal for a role: one line naming the role needed, with the
right article ("an admin token"), on the API and therefore in the remote CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.server import ServedRegistry

from registry import Registry
from registry.errors import AccessError, ArgumentError
from registry.server.auth import role_token


def test_role_phrases() -> None:
    assert [role_token(r) for r in ("reader", "writer", "maintainer", "admin")] == [
        "a reader token", "a writer token", "a maintainer token", "an admin token",
    ]  # fmt: skip


def test_a_reader_is_told_which_token_it_needs(served: ServedRegistry) -> None:
    with Registry.open(served.url, token=served.tokens["reader"]) as reader:
        with pytest.raises(AccessError, match=r"^this needs an admin token; ask an admin$"):
            reader.tokens()
        with pytest.raises(AccessError, match=r"^this needs a maintainer token; ask an admin$"):
            reader.set_alias("nothing@1", "prod")


def test_a_client_without_a_token_is_told_how_to_give_one(
    served: ServedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADAPTERS_TOKEN", raising=False)
    anonymous = Registry.open(served.url)
    with anonymous, pytest.raises(AccessError, match="needs a token: set ADAPTERS_TOKEN") as caught:
        anonymous.list()
    assert "\n" not in str(caught.value)


def test_the_api_path_in_a_server_url_is_accepted(served: ServedRegistry) -> None:
    with Registry.open(served.url + "/api/v1/", token=served.tokens["reader"]) as reader:
        assert isinstance(reader.list(), list)


@pytest.mark.parametrize("url", ["http://[::1", "http://", "http://host:port", "https:///x"])
def test_a_malformed_server_url_is_one_line(url: str) -> None:
    with pytest.raises(ArgumentError, match="is not a registry server URL; give e"):
        Registry.open(url, token="t")


@pytest.mark.parametrize("key", ["/etc/passwd", "../../etc/passwd", "~/.ssh/id", "key.pem", "Key"])
def test_a_server_signs_only_with_a_key_it_holds(served: ServedRegistry, key: str) -> None:
    admin = Registry.open(served.url, token=served.tokens["admin"])
    with admin, pytest.raises(ArgumentError, match="a server signs only with a key it holds") as e:
        admin.sign("anything@1", key)
    assert "mode" not in str(e.value) and "\n" not in str(e.value)


def test_a_key_the_server_does_not_hold_is_named_without_the_servers_paths(
    served: ServedRegistry, tmp_path: Path
) -> None:
    from support.handmade import write_adapter

    from registry.errors import NotFoundError

    admin = Registry.open(served.url, token=served.tokens["admin"])
    with admin:
        ref = admin.push(write_adapter(tmp_path / "a", seed=71), name="signed-by-none").version.ref
        with pytest.raises(NotFoundError, match="holds no private key named 'nokey'") as caught:
            admin.sign(ref, "nokey")
    message = str(caught.value)
    assert str(served.home) not in message and "--key PATH" not in message
    assert "adapters key generate nokey" in message and "\n" not in message
