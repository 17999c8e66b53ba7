"""Registry targets of the form ``SCHEME://...``: http(s) opens a server, every other scheme
(ftp, s3, file...) is refused in one line instead of being taken for a relative path, and
nothing is created on disk for it, through the Python API and through the CLI (``--registry``,
``ADAPTERS_URL``, ``ADAPTERS_HOME``, ``init``, ``doctor``, ``migrate``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import main
from registry.errors import ArgumentError
from registry.store.home import find_home

ACCEPTED = "give a local path, or a server URL http(s)://HOST:PORT"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, to see that nothing appears in it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _nothing_created(cwd: Path, hermetic_env: Path) -> None:
    assert list(cwd.iterdir()) == []
    assert not hermetic_env.exists()  # the ADAPTERS_HOME of the tests, untouched


@pytest.mark.parametrize("create", [False, True])
@pytest.mark.parametrize("target", ["ftp://host/x", "s3://bucket/reg", "FTP://host/x"])
def test_open_refuses_a_scheme_without_an_opener(
    target: str, create: bool, workdir: Path, hermetic_env: Path
) -> None:
    with pytest.raises(ArgumentError) as caught:
        Registry.open(target, create=create)
    message = str(caught.value)
    assert "\n" not in message
    assert f"registry {target!r}" in message and ACCEPTED in message
    _nothing_created(workdir, hermetic_env)


def test_open_refuses_a_file_url_and_names_the_path(workdir: Path, hermetic_env: Path) -> None:
    target = workdir / "reg"
    with pytest.raises(ArgumentError, match=r"give the local path itself \(.*/cwd/reg\)"):
        Registry.open(f"file://{target}", create=True)
    _nothing_created(workdir, hermetic_env)


def test_open_refuses_adapters_url_with_another_scheme(
    workdir: Path, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTERS_URL", "ftp://host/x")
    with pytest.raises(ArgumentError, match=r"\(from ADAPTERS_URL\): ftp:// is not supported"):
        Registry.open()
    _nothing_created(workdir, hermetic_env)


@pytest.mark.parametrize("value", ["ftp://host/x", "http://host:8321"])
def test_adapters_home_takes_only_a_local_path(
    value: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTERS_HOME", value)
    with pytest.raises(ArgumentError, match=r"\(from ADAPTERS_HOME\)"):
        Registry.open()
    with pytest.raises(ArgumentError):
        find_home()
    assert list(workdir.iterdir()) == []


def test_a_path_object_stays_a_local_path(workdir: Path) -> None:
    # A Path is a path whatever its spelling (Path folds the // away): it is not refused.
    with Registry.open(Path("ftp:") / "x", create=True) as registry:
        assert registry.home.root == workdir / "ftp:" / "x"


def test_open_still_reads_an_upper_case_http_url_as_a_server() -> None:
    from registry.errors import ServerError

    with pytest.raises(ServerError, match="cannot reach"):
        Registry.open("HTTP://127.0.0.1:9", token="t").list()


# -- CLI ----------------------------------------------------------------------------------


def _one_line_refusal(result: object, needle: str) -> None:
    from click.testing import Result

    assert isinstance(result, Result)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--registry", "ftp://host/x", "list"],
        ["--registry", "ftp://host/x", "show", "a@1"],
        ["--registry", "ftp://host/x", "doctor"],
        ["--registry", "ftp://host/x", "migrate"],
        ["list", "--registry", "s3://bucket/x"],
        ["init", "ftp://host/x"],
    ],
)
def test_cli_refuses_a_scheme_without_an_opener(
    args: list[str], workdir: Path, hermetic_env: Path
) -> None:
    result = CliRunner().invoke(main, args)
    _one_line_refusal(result, "is not supported; give a local path")
    _nothing_created(workdir, hermetic_env)


@pytest.mark.parametrize("command", [["list"], ["doctor"], ["migrate"], ["alias", "a@1", "prod"]])
@pytest.mark.parametrize("variable", ["ADAPTERS_URL", "ADAPTERS_HOME"])
def test_cli_refuses_such_a_value_from_the_environment(
    variable: str, command: list[str], workdir: Path, hermetic_env: Path
) -> None:
    result = CliRunner().invoke(main, command, env={variable: "ftp://host/x"})
    _one_line_refusal(result, f"(from {variable}): ftp:// is not supported")
    _nothing_created(workdir, hermetic_env)


def test_cli_refuses_a_file_url_with_the_path_to_give(workdir: Path, hermetic_env: Path) -> None:
    for args in (["init", f"file://{workdir}/reg"], ["--registry", f"file://{workdir}/r", "list"]):
        result = CliRunner().invoke(main, args)
        _one_line_refusal(result, "file:// URLs are not accepted; give the local path itself (")
    _nothing_created(workdir, hermetic_env)


def test_cli_init_refuses_a_server_url(workdir: Path, hermetic_env: Path) -> None:
    result = CliRunner().invoke(main, ["init", "http://host:8321"])
    _one_line_refusal(result, "is a server URL where a local directory goes")
    _nothing_created(workdir, hermetic_env)


@pytest.mark.parametrize(
    "url",
    ["http://alice:s3cret@127.0.0.1:1", "https://s3cret@host:8321/", "http://alice:s3cret@h:x/"],
)
def test_a_url_with_a_password_is_refused_without_repeating_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The registry authenticates with a bearer token; a URL's user info would be sent as
    # Basic credentials instead of it, and would show in every message and in the cache path.
    with pytest.raises(ArgumentError, match="ADAPTERS_TOKEN") as raised:
        Registry.open(url, token="adp_x")
    assert "s3cret" not in str(raised.value)
    monkeypatch.setenv("ADAPTERS_TOKEN", "adp_x")
    result = CliRunner().invoke(main, ["--registry", url, "list"])
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    assert "ADAPTERS_TOKEN" in result.output
    assert len(result.output.strip().splitlines()) == 1
