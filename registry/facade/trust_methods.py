"""``TrustMethods``: the part of the ``Registry`` facade for what the registry trusts and
requires: the signing keys whose signatures count, and the promotion policy
(``policy.json``). Both change only with an audit event naming the actor."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.facade.core import FacadeCore

if TYPE_CHECKING:
    from registry.lifecycle.policy_file import PolicyChange, PolicyCheck, PolicyDocument
    from registry.security.keys import KeyInfo, Keyring


class TrustMethods(FacadeCore):
    def _keyring(self) -> Keyring:
        from registry.security.keys import Keyring  # cryptography only where keys are used

        return Keyring(self.home.root, self.catalog)

    def trusted_keys(self) -> builtins.list[KeyInfo]:
        """Every key in the trust store (names, key ids, fingerprints; never key bytes), with
        whether its trust is recorded; only recorded keys count."""
        return self._keyring().candidates()

    def trust_key(self, name: str, public_key: str | Path | bytes) -> KeyInfo:
        """Trust an ed25519 public key (PEM or OpenSSH: a file path, or the key's bytes)
        under ``name``; audited as ``key-trust``."""
        if isinstance(public_key, bytes):
            return self._keyring().trust_bytes(name, public_key, "the public key given")
        return self._keyring().trust(name, Path(public_key))

    def untrust_key(self, name: str) -> KeyInfo:
        """Stop trusting the key ``name``; audited as ``key-untrust``. Signatures it made no
        longer count; a private key made here stays in keys/private/."""
        return self._keyring().untrust(name)

    def policy(self) -> PolicyDocument:
        """The stored promotion policy (policy.json) as a document; None when there is none."""
        from registry.lifecycle.policy_file import read_policy

        return read_policy(self.home.root)

    def check_policy(self, document: Any | None = None) -> PolicyCheck:
        """Every problem of ``document`` as a policy, or of the stored one when None."""
        from registry.lifecycle.policy_file import check_policy

        if document is None:
            stored = self.policy().document
            document = {"version": 1, "rules": []} if stored is None else stored
        return check_policy(document)

    def set_policy(self, document: Any) -> PolicyChange:
        """Replace the promotion policy with ``document`` (validated first, written
        atomically, audited as ``policy-set``); the next gated alias move applies it."""
        from registry.lifecycle.policy_file import set_policy
        from registry.store.actor import current_actor

        return set_policy(self.home.root, self.catalog, document, current_actor())
