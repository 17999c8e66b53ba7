"""Turning huggingface_hub and network failures into one-line ``HubError`` messages that
say what happened and what to do next. Messages are built from the status, the error
code and the server's message, never from request headers; and since a server's message
may echo them (``Authorization: Bearer hf_...``), every message is redacted: the token
in use, anything after ``Bearer``, and anything shaped like a Hugging Face token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from registry.errors import HubError, RegistryError
from registry.hub.settings import HubSettings

LOGIN_HINT = "set HF_TOKEN or run `hf auth login`"


@contextmanager
def hub_errors(
    settings: HubSettings, action: str, repo_id: str, revision: str | None = None
) -> Iterator[None]:
    """Re-raise failures of the client inside the block as ``HubError`` (``action`` is
    e.g. "push" or "pull", named in every message)."""
    try:
        yield
    except RegistryError:
        raise
    except Exception as exc:
        message = describe(exc, settings, repo_id, revision)
        if message is None:
            raise
        raise HubError(redact(f"hub {action}: {message}", settings.token)) from None


_SECRET_SHAPES = re.compile(
    r"(?i)(authorization\s*[:=]\s*(?:(?:bearer|basic|token)\s+)?|bearer\s+)[^\s,;\"']+"
    r"|\bhf_[A-Za-z0-9_-]{6,}"
)
REDACTED = "<redacted>"


def redact(message: str, token: str | None) -> str:
    """``message`` with the token and anything that looks like a credential masked."""
    if token:
        message = message.replace(token, REDACTED)
    return _SECRET_SHAPES.sub(lambda m: (m.group(1) or "") + REDACTED, message)


def describe(
    exc: BaseException, settings: HubSettings, repo_id: str, revision: str | None
) -> str | None:
    """A sentence for a known failure, or None for anything else (a bug: let it surface)."""
    import httpx2
    from huggingface_hub.errors import (
        CachedRepoTreeNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = settings.public_endpoint
    at = f"{repo_id}@{revision}" if revision else repo_id
    if isinstance(
        exc,
        OfflineModeIsEnabled
        | LocalEntryNotFoundError
        | IncompleteSnapshotError
        | CachedRepoTreeNotFoundError,
    ):
        if settings.offline:
            return (
                f"offline (HF_HUB_OFFLINE=1) and {at} is not complete in the local Hugging "
                "Face cache; pull it once online, then pin its commit (REPO@<commit>)"
            )
        return f"{at} is not in the local Hugging Face cache: {_first_line(exc)}"
    if isinstance(exc, RepositoryNotFoundError | GatedRepoError):
        return (
            f"repository {repo_id} not found on {where} (or it is private or gated and the "
            f"token cannot read it); check the id, or {LOGIN_HINT}"
        )
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo_id} has no revision {revision!r} (expected a branch, a tag or a commit)"
    if isinstance(exc, RemoteEntryNotFoundError):
        return f"{at}: a file is missing on the Hub ({_server_message(exc)})"
    if isinstance(exc, HfHubHTTPError):
        return _http_status(exc, where, repo_id, revision)
    if isinstance(exc, httpx2.HTTPError):
        return (
            f"lost the connection to {where} while talking about {at} "
            f"({type(exc).__name__}: {_first_line(exc)}), after the client's retries; "
            "nothing was changed here, run the command again"
        )
    if isinstance(exc, HFValidationError):
        return f"invalid repo id or revision: {_first_line(exc)}"
    if isinstance(exc, OSError):
        # The client's own consistency checks (a short download) raise plain OSErrors.
        return f"{at}: {_first_line(exc)}"
    return None


def _http_status(exc: BaseException, where: str, repo_id: str, revision: str | None) -> str:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", 0)
    server = _server_message(exc)
    if status == 412:
        return (
            f"{repo_id}: branch {revision or 'main'} moved while pushing (another push "
            "landed first); nothing was committed. Run `adapters hub status` and push again"
        )
    if status == 401:
        return f"{where} refused the token (401 Unauthorized); {LOGIN_HINT}"
    if status == 403:
        return f"no write access to {repo_id} on {where} (403 Forbidden); {LOGIN_HINT}"
    if status == 409:
        return f"{repo_id}: conflict (409): {server}"
    return f"{where} answered HTTP {status} for {repo_id}: {server}"


def _server_message(exc: BaseException) -> str:
    message = getattr(exc, "server_message", None)
    return str(message).strip().splitlines()[0] if message else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
