"""How the server words a refusal for a role: one line naming the role needed, with the
right article ("an admin token"), on the API and therefore in the remote CLI."""

from __future__ import annotations

import pytest
from support.server import ServedRegistry

from registry import Registry
from registry.errors import AccessError
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
