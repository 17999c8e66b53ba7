"""The vLLM LoRA resolver plugin: ``lora_name`` is any registry reference.

Installed as the entry point ``adapter_registry`` in the ``vllm.general_plugins``
group; vLLM calls ``register()`` in each of its processes, which registers a
``LoRAResolver`` named ``adapter-registry``. For a request naming an adapter vLLM has
not loaded, the resolver resolves the reference against the registry found from the
environment (``ADAPTERS_HOME`` and the usual discovery), checks the version against the
served base (vLLM's ``--model``: a directory or a Hub id in the local HF cache, read
once per process), and answers a ``LoRARequest`` on the materialised, verified
directory. A refusal (no such adapter, not LoRA, another base) answers None and logs
one line with the reason, so vLLM's 404 is never a silent base-model answer.

vLLM keeps what a resolver returned under the requested name: after an alias moves,
``name@prod`` keeps serving the old version until vLLM unloads it
(``POST /v1/unload_lora_adapter``) or restarts (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from typing import Any

from vllm.lora.request import LoRARequest
from vllm.lora.resolver import LoRAResolver, LoRAResolverRegistry

from registry import Registry
from registry.bases.compat import failure_message
from registry.bases.target import BaseTarget
from registry.errors import NotFoundError, RegistryError
from registry.store.base_records import resolve_target

RESOLVER_NAME = "adapter-registry"
# What vLLM's LoRA layers apply; anything else would be refused by vLLM or served wrongly.
_SERVABLE_METHODS = ("lora",)

logger = logging.getLogger(__name__)


class RegistryLoRAResolver(LoRAResolver):  # type: ignore[misc]
    """Resolves registry references to materialised, base-checked LoRA directories."""

    def __init__(self, registry_path: str | None = None) -> None:
        self.registry_path = registry_path
        self._bases: dict[str, BaseTarget] = {}
        self._lock = threading.Lock()

    async def resolve_lora(self, base_model_name: str, lora_name: str) -> LoRARequest | None:
        # Fingerprinting a base and copying files block: keep them off vLLM's event loop.
        return await asyncio.to_thread(self.resolve, base_model_name, lora_name)

    def resolve(self, base_model_name: str, lora_name: str) -> LoRARequest | None:
        """The synchronous resolution ``resolve_lora`` runs in a worker thread."""
        try:
            with Registry.open(self.registry_path) as registry:
                return self._resolve(registry, base_model_name, lora_name)
        except NotFoundError as exc:
            logger.info("adapter-registry: %s: %s", lora_name, exc)
        except RegistryError as exc:
            logger.warning("adapter-registry: refusing %s: %s", lora_name, exc)
        return None

    def _resolve(
        self, registry: Registry, base_model_name: str, lora_name: str
    ) -> LoRARequest | None:
        version = registry.get(lora_name)
        if version.method not in _SERVABLE_METHODS or version.manifest.config.get("use_dora"):
            kind = "DoRA" if version.method == "lora" else version.method
            logger.warning(
                "adapter-registry: refusing %s (%s): vLLM serves plain LoRA adapters, not %s; "
                "serve it with transformers and registry.integrations.pool",
                lora_name,
                version.ref,
                kind,
            )
            return None
        report = registry.check_compat(version.ref, self._base(registry, base_model_name))
        if not report.ok:
            logger.warning(
                "adapter-registry: %s",
                failure_message(report, [f"serve {version.ref} on the base it was trained on"]),
            )
            return None
        for check in report.warnings:
            logger.info("adapter-registry: %s: %s: %s", version.ref, check.name, check.detail)
        path = registry.materialize(version.ref)
        logger.info("adapter-registry: %s -> %s (%s)", lora_name, version.ref, path)
        return LoRARequest(
            lora_name=lora_name,
            lora_int_id=_stable_id(version.digest),
            lora_path=str(path),
            base_model_name=base_model_name,
        )

    def _base(self, registry: Registry, base_model_name: str) -> BaseTarget:
        # Read once per process: a base's files do not change under a running server.
        with self._lock:
            target = self._bases.get(base_model_name)
            if target is None:
                target = resolve_target(base_model_name, registry.catalog)
                self._bases[base_model_name] = target
            return target


def _stable_id(digest: str) -> int:
    """A positive id derived from the digest (vLLM renumbers resolved adapters anyway)."""
    return int.from_bytes(hashlib.sha256(digest.encode()).digest()[:4], "big") % (2**31 - 1) + 1


def register(**_: Any) -> None:
    """The ``vllm.general_plugins`` entry point; safe to call more than once."""
    if RESOLVER_NAME not in LoRAResolverRegistry.get_supported_resolvers():
        LoRAResolverRegistry.register_resolver(RESOLVER_NAME, RegistryLoRAResolver())
