"""Finding and creating the registry home.

A home is a directory holding ``registry.json`` (the marker), ``catalog.db`` (the
default SQLite catalog), ``objects/`` (the blob store) and ``tmp/`` (staging). It is found
the way git finds a repository: an explicit path, then ``ADAPTERS_HOME``, then the
nearest ``.adapters/`` directory upward from the working directory, and last the
per-user data directory, which is created on first use.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from registry.errors import ArgumentError, HomeError

HOME_ENV = "ADAPTERS_HOME"
DATABASE_URL_ENV = "ADAPTERS_DATABASE_URL"
LOCAL_DIRNAME = ".adapters"
MARKER_FILE = "registry.json"
HOME_LAYOUT_VERSION = 1
# What a home holds before its marker is written (a creation under way, or interrupted).
_LAYOUT_ENTRIES = frozenset({"objects", "tmp", "catalog.db", "catalog.db-wal", "catalog.db-shm"})
# Registry URLs that open a server (``Registry.open`` finds their client by scheme).
SERVER_SCHEMES = ("http", "https")
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class RegistryHome:
    """A located registry home and how it was found."""

    root: Path
    found_by: str  # "argument" | "environment" | "directory" | "user-default"
    # No marker yet: opening it creates the catalog, and only then the marker, so a
    # home with a marker always had a catalog (a missing one is an error, not a new one).
    new: bool = field(default=False, compare=False)

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def sqlite_path(self) -> Path:
        return self.root / "catalog.db"

    def settings(self) -> dict[str, str]:
        """The string settings in ``registry.json`` (for example ``blob_url``)."""
        if self.new and not (self.root / MARKER_FILE).exists():
            return {}  # being created: the marker is written once its catalog exists
        try:
            data = json.loads((self.root / MARKER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HomeError(
                f"cannot read {self.root / MARKER_FILE}: {exc}; fix or restore the file"
            ) from exc
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def database_url(self) -> str:
        """The catalog URL: ``ADAPTERS_DATABASE_URL`` if set, else the home's SQLite file."""
        url = os.environ.get(DATABASE_URL_ENV)
        if url:
            return url
        return f"sqlite:///{self.sqlite_path}"


def url_scheme(target: str) -> str | None:
    """The scheme (lower case) of a target of the form ``SCHEME://...``, else None."""
    match = _URL_SCHEME.match(target)
    return match.group(1).lower() if match else None


def refuse_url(target: str, source: str = "", *, servers: bool = True) -> None:
    """Refuse a ``SCHEME://...`` target that no opener takes (every scheme but http and https,
    or any scheme at all where only a local directory goes: ``servers=False``), before it is
    taken for a relative path and a directory named ``ftp:`` is looked up or created.
    ``source`` names where the value came from (``ADAPTERS_HOME``)."""
    scheme = url_scheme(target)
    if scheme is None or (servers and scheme in SERVER_SCHEMES):
        return
    where = f"registry {target!r}" + (f" (from {source})" if source else "")
    if scheme in SERVER_SCHEMES:
        raise ArgumentError(
            f"{where} is a server URL where a local directory goes; give a local path "
            "(a server URL goes in --registry or ADAPTERS_URL)"
        )
    accepted = "a local path, or a server URL http(s)://HOST:PORT" if servers else "a local path"
    if scheme == "file":
        # Refused rather than converted: one spelling for a local registry, and no guessing
        # about hosts and percent-escapes.
        parts = urllib.parse.urlsplit(target)
        local = parts.netloc in ("", "localhost")
        path = f" ({urllib.request.url2pathname(parts.path)})" if local and parts.path else ""
        raise ArgumentError(
            f"{where}: file:// URLs are not accepted; give the local path itself{path}"
        )
    raise ArgumentError(f"{where}: {scheme}:// is not supported; give {accepted}")


def user_default_home() -> Path:
    # Imported here: platformdirs is only needed when no other home is found.
    import platformdirs

    return Path(platformdirs.user_data_dir("adapter-registry", appauthor=False))


def is_home(path: Path) -> bool:
    return (path / MARKER_FILE).is_file()


def init_home(path: Path) -> RegistryHome:
    """Create (or adopt, if it already is one) a registry home at ``path``.

    The catalog is created by whoever opens it next with ``create`` (``adapters
    init`` and ``Registry.open(path, create=True)`` do both at once).
    """
    home = prepare_home(path, "argument")
    mark_home(home)
    return home


def prepare_home(path: Path, found_by: str) -> RegistryHome:
    """The directories of a home at ``path``, without its marker when it is new:
    ``Registry.open`` creates the catalog and then calls ``mark_home``."""
    path = path.expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise HomeError(f"cannot create a registry at {path}: it exists and is not a directory")
    if path.is_dir() and not is_home(path) and any(
        entry.name not in _LAYOUT_ENTRIES and not entry.name.startswith(f".{MARKER_FILE}.")
        for entry in path.iterdir()
    ):
        raise HomeError(
            f"cannot create a registry at {path}: the directory is not empty "
            "and is not a registry; choose an empty or new directory"
        )
    try:
        for sub in (path, path / "objects", path / "tmp"):
            sub.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HomeError(f"cannot create a registry at {path}: {exc.strerror or exc}") from exc
    return RegistryHome(root=path, found_by=found_by, new=not is_home(path))


def mark_home(home: RegistryHome) -> None:
    """Write the home's marker (after its catalog was created)."""
    marker = home.root / MARKER_FILE
    if marker.exists():
        return
    tmp = home.root / f".{MARKER_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps({"layout": HOME_LAYOUT_VERSION}) + "\n", encoding="utf-8")
        os.replace(tmp, marker)
    except OSError as exc:
        raise HomeError(f"cannot create a registry at {home.root}: {exc.strerror or exc}") from exc


def _nearest_local_home(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / LOCAL_DIRNAME
        if is_home(candidate):
            return candidate
    return None


def find_home(explicit: Path | str | None = None, *, create_default: bool = True) -> RegistryHome:
    """Locate the registry home; see the module docstring for the order."""
    if explicit is not None:
        if isinstance(explicit, str):
            refuse_url(explicit, servers=False)
        path = Path(explicit).expanduser().absolute()
        if not is_home(path):
            raise HomeError(f"{path} is not a registry; create one with `adapters init {path}`")
        return RegistryHome(root=path, found_by="argument")
    env = os.environ.get(HOME_ENV)
    if env:
        refuse_url(env, HOME_ENV, servers=False)
        path = Path(env).expanduser().absolute()
        # An explicitly configured home is created on first use, like the default.
        if not is_home(path):
            return prepare_home(path, "environment")
        return RegistryHome(root=path, found_by="environment")
    local = _nearest_local_home(Path.cwd())
    if local is not None:
        return RegistryHome(root=local, found_by="directory")
    default = user_default_home()
    if not is_home(default):
        if not create_default:
            raise HomeError("no registry found; create one with `adapters init`")
        return prepare_home(default, "user-default")
    return RegistryHome(root=default, found_by="user-default")
