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
from dataclasses import dataclass
from pathlib import Path

from registry.errors import HomeError

HOME_ENV = "ADAPTERS_HOME"
DATABASE_URL_ENV = "ADAPTERS_DATABASE_URL"
LOCAL_DIRNAME = ".adapters"
MARKER_FILE = "registry.json"
HOME_LAYOUT_VERSION = 1


@dataclass(frozen=True)
class RegistryHome:
    """A located registry home and how it was found."""

    root: Path
    found_by: str  # "argument" | "environment" | "directory" | "user-default"

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


def user_default_home() -> Path:
    # Imported here: platformdirs is only needed when no other home is found.
    import platformdirs

    return Path(platformdirs.user_data_dir("adapter-registry", appauthor=False))


def is_home(path: Path) -> bool:
    return (path / MARKER_FILE).is_file()


def init_home(path: Path) -> RegistryHome:
    """Create (or adopt, if it already is one) a registry home at ``path``."""
    path = path.expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise HomeError(f"cannot create a registry at {path}: it exists and is not a directory")
    if path.is_dir() and not is_home(path) and any(path.iterdir()):
        raise HomeError(
            f"cannot create a registry at {path}: the directory is not empty "
            "and is not a registry; choose an empty or new directory"
        )
    try:
        for sub in (path, path / "objects", path / "tmp"):
            sub.mkdir(parents=True, exist_ok=True)
        marker = path / MARKER_FILE
        if not marker.exists():
            tmp = path / f".{MARKER_FILE}.tmp"
            tmp.write_text(json.dumps({"layout": HOME_LAYOUT_VERSION}) + "\n", encoding="utf-8")
            os.replace(tmp, marker)
    except OSError as exc:
        raise HomeError(f"cannot create a registry at {path}: {exc.strerror or exc}") from exc
    return RegistryHome(root=path, found_by="argument")


def _nearest_local_home(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / LOCAL_DIRNAME
        if is_home(candidate):
            return candidate
    return None


def find_home(explicit: Path | str | None = None, *, create_default: bool = True) -> RegistryHome:
    """Locate the registry home; see the module docstring for the order."""
    if explicit is not None:
        path = Path(explicit).expanduser().absolute()
        if not is_home(path):
            raise HomeError(f"{path} is not a registry; create one with `adapters init {path}`")
        return RegistryHome(root=path, found_by="argument")
    env = os.environ.get(HOME_ENV)
    if env:
        path = Path(env).expanduser().absolute()
        # An explicitly configured home is created on first use, like the default.
        if not is_home(path):
            init_home(path)
        return RegistryHome(root=path, found_by="environment")
    local = _nearest_local_home(Path.cwd())
    if local is not None:
        return RegistryHome(root=local, found_by="directory")
    default = user_default_home()
    if not is_home(default):
        if not create_default:
            raise HomeError("no registry found; create one with `adapters init`")
        init_home(default)
    return RegistryHome(root=default, found_by="user-default")
