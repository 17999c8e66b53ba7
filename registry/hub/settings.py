"""Where the Hub is and how to talk to it, read from the environment when a sync starts.

huggingface_hub reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HUB_DISABLE_XET`` and the
cache location once, when it is imported; a registry used from a long-lived process (a
notebook, a service, a test) may see them change afterwards. So they are resolved per
call: the endpoint, token and cache directory are handed to the client explicitly, and
the two switches the client only reads from its module constants (offline mode, Xet) are
set on those constants for the duration of one operation.

The token comes from ``HF_TOKEN`` or the ``hf auth login`` token file, through
huggingface_hub. It lives in memory only: it is never stored, logged or printed.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from registry.bases.hub_cache import hub_cache_dir

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "ON", "YES", "TRUE"}
# One sync at a time may change huggingface_hub's module-level switches.
_SWITCHES = threading.RLock()


def _env_true(*names: str) -> bool:
    return any((os.environ.get(name) or "").upper() in _TRUE for name in names)


@dataclass(frozen=True)
class HubSettings:
    endpoint: str
    offline: bool
    disable_xet: bool
    cache_dir: Path
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls) -> HubSettings:
        from huggingface_hub import get_token

        endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        return cls(
            endpoint=endpoint.rstrip("/"),
            offline=_env_true("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"),
            disable_xet=_env_true("HF_HUB_DISABLE_XET"),
            cache_dir=hub_cache_dir(),
            token=get_token(),
        )

    @property
    def public_endpoint(self) -> str:
        """The endpoint as it may be shown and recorded: no user, password, query or fragment."""
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))

    def api(self) -> HfApi:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token, library_name="adapter-registry")


@contextmanager
def client_session(
    settings: HubSettings, *, xet: bool = False, progress_bars: bool = False
) -> Iterator[None]:
    """Apply this call's offline and Xet switches and show the client's progress bars or
    not (off by default: metadata requests need none), restoring everything afterwards."""
    from huggingface_hub import constants

    with _SWITCHES:
        saved = (constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET)
        constants.HF_HUB_OFFLINE = settings.offline
        constants.HF_HUB_DISABLE_XET = not xet
        restore_bars = _set_progress_bars(progress_bars)
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET = saved
            if restore_bars is not None:
                _set_progress_bars(restore_bars)


def _set_progress_bars(show: bool) -> bool | None:
    """Turn the client's bars on or off; return the previous state to restore, or None."""
    from huggingface_hub import constants
    from huggingface_hub.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    # HF_HUB_DISABLE_PROGRESS_BARS, when set, has the last word (the client says so).
    if constants.HF_HUB_DISABLE_PROGRESS_BARS is not None:
        return None
    shown = not are_progress_bars_disabled()
    if show and not shown:
        enable_progress_bars()
    elif not show and shown:
        disable_progress_bars()
    return shown


def xet_supported(settings: HubSettings, repo_id: str, revision: str) -> bool:
    """Whether uploads may go through Xet: allowed, installed, and offered by the server.

    huggingface_hub uploads through Xet whenever ``hf_xet`` is installed, and a server
    without Xet then fails the upload. Asking for a write token first (the request the
    Xet upload would make anyway) tells the two kinds of server apart.
    """
    if settings.disable_xet or importlib.util.find_spec("hf_xet") is None:
        return False
    from huggingface_hub import constants, get_session
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    url = f"{settings.endpoint}/api/models/{repo_id}/xet-write-token/{quote(revision, safe='')}"
    try:
        response = get_session().get(url, headers=build_hf_headers(token=settings.token))
    except Exception:  # any failure to ask means: no Xet
        return False
    return response.status_code == 200 and constants.HUGGINGFACE_HEADER_X_XET_ENDPOINT in (
        response.headers
    )
