"""Finding and creating the registry home."""

from __future__ import annotations

import json
from pathlib import Path

import platformdirs
import pytest

from registry import Registry
from registry.errors import HomeError
from registry.store.home import (
    DATABASE_URL_ENV,
    HOME_ENV,
    LOCAL_DIRNAME,
    MARKER_FILE,
    RegistryHome,
    find_home,
    init_home,
    is_home,
    user_default_home,
)


def assert_is_fresh_home(path: Path) -> None:
    assert is_home(path)
    assert json.loads((path / MARKER_FILE).read_text(encoding="utf-8")) == {"layout": 1}
    assert (path / "objects").is_dir()
    assert (path / "tmp").is_dir()
    assert sorted(p.name for p in path.iterdir()) == ["objects", MARKER_FILE, "tmp"]


@pytest.fixture
def no_env_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOME_ENV)


# -- init -------------------------------------------------------------------------


def test_init_new_directory(tmp_path: Path) -> None:
    home = init_home(tmp_path / "a" / "b" / "reg")
    assert home == RegistryHome(root=tmp_path / "a" / "b" / "reg", found_by="argument")
    assert_is_fresh_home(home.root)


def test_init_existing_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "reg").mkdir()
    assert init_home(tmp_path / "reg").root == tmp_path / "reg"
    assert_is_fresh_home(tmp_path / "reg")


def test_init_twice_is_fine_and_keeps_contents(tmp_path: Path) -> None:
    first = init_home(tmp_path / "reg")
    (first.objects_dir / "kept").write_text("x")
    marker_before = (first.root / MARKER_FILE).read_bytes()
    second = init_home(tmp_path / "reg")
    assert second == first
    assert (first.objects_dir / "kept").read_text() == "x"
    assert (first.root / MARKER_FILE).read_bytes() == marker_before


def test_init_adopts_registry_missing_subdirectories(tmp_path: Path) -> None:
    home = init_home(tmp_path / "reg")
    home.tmp_dir.rmdir()
    init_home(tmp_path / "reg")
    assert home.tmp_dir.is_dir()


def test_init_refuses_non_empty_non_registry(tmp_path: Path) -> None:
    target = tmp_path / "project"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(HomeError, match="not empty and is not a registry") as info:
        init_home(target)
    assert str(target) in str(info.value)
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_init_refuses_directory_with_only_a_hidden_file(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / ".git").mkdir()
    with pytest.raises(HomeError, match="not empty"):
        init_home(tmp_path / "p")


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(HomeError, match="exists and is not a directory"):
        init_home(tmp_path / "file")


def test_init_under_a_file_is_a_home_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(HomeError, match="cannot create a registry at"):
        init_home(tmp_path / "file" / "reg")


def test_init_relative_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = init_home(Path("rel"))
    assert home.root == tmp_path / "rel"
    assert home.root.is_absolute()


def test_home_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = RegistryHome(root=tmp_path, found_by="argument")
    assert home.objects_dir == tmp_path / "objects"
    assert home.tmp_dir == tmp_path / "tmp"
    assert home.sqlite_path == tmp_path / "catalog.db"
    assert home.database_url() == f"sqlite:///{tmp_path}/catalog.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql+psycopg://u@h/db")
    assert home.database_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv(DATABASE_URL_ENV, "")
    assert home.database_url() == f"sqlite:///{tmp_path}/catalog.db"


# -- discovery --------------------------------------------------------------------


def test_explicit_path_wins(tmp_path: Path, hermetic_env: Path) -> None:
    explicit = init_home(tmp_path / "explicit").root
    found = find_home(explicit)
    assert found == RegistryHome(root=explicit, found_by="argument")
    assert find_home(str(explicit)) == found
    assert not hermetic_env.exists()


def test_explicit_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_home(tmp_path / "reg")
    monkeypatch.chdir(tmp_path)
    assert find_home("reg").root == tmp_path / "reg"


@pytest.mark.parametrize("state", ["missing", "empty", "not-a-registry"])
def test_explicit_path_that_is_not_a_registry(tmp_path: Path, state: str) -> None:
    target = tmp_path / "elsewhere"
    if state != "missing":
        target.mkdir()
    if state == "not-a-registry":
        (target / "objects").mkdir()
    with pytest.raises(HomeError) as info:
        find_home(target)
    assert str(info.value) == (
        f"{target} is not a registry; create one with `adapters init {target}`"
    )
    assert not (target / MARKER_FILE).exists()


def test_environment_home_created_on_first_use(hermetic_env: Path) -> None:
    assert not hermetic_env.exists()
    found = find_home()
    assert found == RegistryHome(root=hermetic_env, found_by="environment") and found.new
    # The marker is written only once the catalog exists: opening does both.
    assert not is_home(hermetic_env)
    Registry.open().close()
    assert is_home(hermetic_env) and (hermetic_env / "catalog.db").is_file()
    assert find_home() == found and not find_home().new


def test_environment_beats_local_directory(
    tmp_path: Path, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_home(tmp_path / "proj" / LOCAL_DIRNAME)
    monkeypatch.chdir(tmp_path / "proj")
    assert find_home() == RegistryHome(root=hermetic_env, found_by="environment")


def test_environment_home_that_is_a_non_empty_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    monkeypatch.setenv(HOME_ENV, str(busy))
    with pytest.raises(HomeError, match="not empty"):
        find_home()


def test_explicit_beats_environment(tmp_path: Path, hermetic_env: Path) -> None:
    init_home(hermetic_env)
    explicit = init_home(tmp_path / "x").root
    assert find_home(explicit).root == explicit


@pytest.mark.usefixtures("no_env_home")
def test_nearest_local_directory_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = init_home(tmp_path / "proj" / LOCAL_DIRNAME).root
    inner = init_home(tmp_path / "proj" / "sub" / LOCAL_DIRNAME).root
    deep = tmp_path / "proj" / "sub" / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_home() == RegistryHome(root=inner, found_by="directory")
    monkeypatch.chdir(tmp_path / "proj" / "sub")
    assert find_home() == RegistryHome(root=inner, found_by="directory")
    other = tmp_path / "proj" / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    assert find_home() == RegistryHome(root=outer, found_by="directory")
    monkeypatch.chdir(tmp_path / "proj")
    assert find_home() == RegistryHome(root=outer, found_by="directory")


@pytest.mark.usefixtures("no_env_home")
def test_local_directory_without_marker_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = init_home(tmp_path / "proj" / LOCAL_DIRNAME).root
    (tmp_path / "proj" / "sub" / LOCAL_DIRNAME).mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "proj" / "sub")
    assert find_home() == RegistryHome(root=outer, found_by="directory")


@pytest.mark.usefixtures("no_env_home")
def test_empty_environment_variable_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = init_home(tmp_path / "proj" / LOCAL_DIRNAME).root
    monkeypatch.setenv(HOME_ENV, "")
    monkeypatch.chdir(tmp_path / "proj")
    assert find_home() == RegistryHome(root=local, found_by="directory")


def test_platformdirs_honours_xdg_data_home(tmp_path: Path) -> None:
    expected = tmp_path / "xdg" / "adapter-registry"
    assert Path(platformdirs.user_data_dir("adapter-registry", appauthor=False)) == expected
    assert user_default_home() == expected


@pytest.mark.usefixtures("no_env_home")
def test_user_default_created_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "nowhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    default = tmp_path / "xdg" / "adapter-registry"
    assert not default.exists()
    found = find_home()
    assert found == RegistryHome(root=default, found_by="user-default") and found.new
    Registry.open().close()
    assert is_home(default) and (default / "catalog.db").is_file()
    assert find_home() == found


@pytest.mark.usefixtures("no_env_home")
def test_user_default_not_created_when_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HomeError, match="no registry found; create one with `adapters init`"):
        find_home(create_default=False)
    assert not (tmp_path / "xdg" / "adapter-registry").exists()


@pytest.mark.usefixtures("no_env_home")
def test_existing_user_default_found_without_creating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    default = init_home(tmp_path / "xdg" / "adapter-registry").root
    assert find_home(create_default=False) == RegistryHome(root=default, found_by="user-default")


@pytest.mark.usefixtures("no_env_home")
def test_local_directory_beats_user_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_home(tmp_path / "xdg" / "adapter-registry")
    local = init_home(tmp_path / "proj" / LOCAL_DIRNAME).root
    monkeypatch.chdir(tmp_path / "proj")
    assert find_home().found_by == "directory"
    assert find_home().root == local
