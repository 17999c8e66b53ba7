"""Sync with the Hugging Face Hub: ``Registry.hub.push``, ``.pull`` and ``.status``.

Built on the real ``huggingface_hub`` client (2.x). The endpoint and token come from
``HF_ENDPOINT`` / ``HF_TOKEN`` or the ``hf auth login`` token, read when each call starts;
the token is never stored, written or printed. See docs/hub.md.

    >>> reg = Registry.open()                                    # doctest: +SKIP
    >>> reg.hub.push("my-lora@3", "acme/my-lora")                # doctest: +SKIP
    >>> reg.hub.pull("acme/my-lora@v3")                          # doctest: +SKIP
    >>> reg.hub.status("my-lora").in_sync                        # doctest: +SKIP

Importing this package does not import huggingface_hub; the calls do.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from registry.hub.links import links_for_version
from registry.hub.results import HubPullResult, HubPushResult, HubStatus, HubStatusReport
from registry.progress import Progress
from registry.store.catalog.hub_link_rows import HubLink

if TYPE_CHECKING:
    from registry.hub.settings import HubSettings
    from registry.store.store import Store

__all__ = ["HubLink", "HubPullResult", "HubPushResult", "HubStatus", "HubStatusReport", "HubSync"]


def _bars(wanted: bool | None) -> bool:
    return sys.stderr.isatty() if wanted is None else wanted


class HubSync:
    """The Hub operations of one open registry."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def _settings() -> HubSettings:
        from registry.hub.settings import HubSettings

        return HubSettings.from_environment()

    def push(
        self,
        ref: str,
        repo_id: str,
        *,
        private: bool = False,
        branch: str | None = None,
        progress: Progress | None = None,
        progress_bars: bool | None = None,
    ) -> HubPushResult:
        """Push version ``ref`` to ``repo_id`` (created if missing, ``private`` then) in one
        commit on ``branch`` (default main) and tag it ``v<version>``. Unchanged content
        makes no commit. ``progress_bars``: the client's upload bars (default: on when
        stderr is a terminal)."""
        from registry.hub.push import push_version

        return push_version(
            self._store,
            ref,
            repo_id,
            settings=self._settings(),
            private=private,
            branch=branch,
            progress=progress,
            progress_bars=_bars(progress_bars),
        )

    def pull(
        self,
        target: str,
        *,
        name: str | None = None,
        base: str | None = None,
        progress: Progress | None = None,
        progress_bars: bool | None = None,
    ) -> HubPullResult:
        """Import ``REPO_ID[@REVISION]`` as a version, every file checked against the Hub's
        hashes and the registry manifest. ``name`` overrides the recorded name; ``base``
        names the base model of a plain PEFT repo whose config and card name none.
        ``progress_bars``: the client's download bars (default: on when stderr is a terminal)."""
        from registry.hub.pull import pull_repo

        return pull_repo(
            self._store,
            target,
            settings=self._settings(),
            name=name,
            base=base,
            progress=progress,
            progress_bars=_bars(progress_bars),
        )

    def status(
        self, ref: str, *, repo_id: str | None = None, branch: str | None = None
    ) -> HubStatusReport:
        """Compare ``ref`` with the Hub repos it was synced with (or ``repo_id``), by digest."""
        from registry.hub.status import sync_status

        return sync_status(
            self._store, ref, settings=self._settings(), repo_id=repo_id, branch=branch
        )

    def links(self, ref: str) -> list[HubLink]:
        """Every recorded push and pull of ``ref``, oldest first."""
        version = self._store.resolve(ref)
        return links_for_version(self._store.catalog, version.name, version.version)
