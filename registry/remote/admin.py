"""Administering a registry server: access tokens, the trusted signing keys and the
promotion policy. Every call needs an admin token without a namespace; the server checks
each change as a local one is checked and audits it with the token's name."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import SignatureError
from registry.remote import wire
from registry.remote.codec import decode, encode
from registry.remote.records import RemoteRecords

if TYPE_CHECKING:
    from registry.lifecycle.policy_file import PolicyChange, PolicyCheck, PolicyDocument
    from registry.security.keys import KeyInfo
    from registry.security.tokens import NewToken, TokenInfo, TokenRevocation


class RemoteAdmin(RemoteRecords):
    """Tokens, trusted keys and the policy of ``RemoteRegistry``."""

    def _admin_post(self, path: str, body: Any) -> Any:
        return self._send("POST", path, json=encode(body)).json()

    # -- tokens ---------------------------------------------------------------------------

    def create_token(
        self,
        name: str,
        role: str,
        *,
        namespace: str | None = None,
        expires: str | None = None,
    ) -> NewToken:
        from registry.security.tokens import NewToken

        body = wire.TokenBody(name, role, namespace, expires)
        return decode(NewToken, self._admin_post("/tokens", body))

    def tokens(self) -> builtins.list[TokenInfo]:
        from registry.security.tokens import TokenInfo

        return self._every("/tokens", TokenInfo)

    def revoke_token(self, name: str) -> TokenRevocation:
        from registry.security.tokens import TokenRevocation

        body = wire.TokenNameBody(name)
        return decode(TokenRevocation, self._admin_post("/tokens/revoke", body))

    # -- trusted keys ---------------------------------------------------------------------

    def trusted_keys(self) -> builtins.list[KeyInfo]:
        from registry.security.keys import KeyInfo

        return self._every("/keys", KeyInfo)

    def trust_key(self, name: str, public_key: str | Path | bytes) -> KeyInfo:
        """Send the public key (read here from a file, or given as bytes) for the server
        to check and trust under ``name``."""
        from registry.security.keys import KeyInfo, read_key_file

        data = public_key if isinstance(public_key, bytes) else read_key_file(Path(public_key))
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError("the public key is not PEM or OpenSSH text") from None
        return decode(KeyInfo, self._admin_post("/keys", wire.KeyBody(name, text)))

    def untrust_key(self, name: str) -> KeyInfo:
        from registry.security.keys import KeyInfo

        return decode(KeyInfo, self._admin_post("/keys/untrust", wire.KeyNameBody(name)))

    # -- the promotion policy -------------------------------------------------------------

    def policy(self) -> PolicyDocument:
        from registry.lifecycle.policy_file import PolicyDocument

        return decode(PolicyDocument, self._send("GET", "/policy").json())

    def check_policy(self, document: Any | None = None) -> PolicyCheck:
        from registry.lifecycle.policy_file import PolicyCheck

        return decode(PolicyCheck, self._admin_post("/policy/check", wire.PolicyBody(document)))

    def set_policy(self, document: Any) -> PolicyChange:
        from registry.lifecycle.policy_file import PolicyChange

        body = encode(wire.PolicyBody(document))
        return decode(PolicyChange, self._send("PUT", "/policy", json=body).json())

