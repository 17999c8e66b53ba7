"""How a blob store is configured and what a mistake in it reads like: URL forms refused
before any request, the variable that overrides registry.json named by doctor, AWS
profiles, endpoints and settings missing, an unusable cache directory, and `blobs copy`
with relative paths, a mistyped source and a store of many small blobs (real SeaweedFS
on 127.0.0.1 where a server is needed)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from conftest import use_s3
from support.handmade import write_lora
from support.lifecycle import one_line_error, run
from support.s3_proxy import ThrottlingProxy
from support.s3_server import ACCESS_KEY, BUCKET, SECRET_KEY, S3Server

from registry import Registry
from registry.errors import ArgumentError, BlobStoreError
from registry.store.blob_cache import BlobCache
from registry.store.blob_config import open_blob_backend
from registry.store.blobs import BlobStore
from registry.store.home import RegistryHome
from registry.store.object_blobs import ObjectBlobStore
from registry.store.object_url import parse_object_url

# -- URLs, before any request --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3://b/../other", "'..' segment"),
        ("s3://b/a/../../x", "'..' segment"),
        ("s3://b/a/./b", "'.' segment"),
        ("s3://b/a//b", "empty segment"),
        ("az://adapters/a//b/", "empty segment"),
        ("s3://b/a\tb", "control character"),
    ],
)
def test_prefixes_the_stores_refuse_are_refused_up_front(url: str, problem: str) -> None:
    with pytest.raises(ArgumentError, match=problem) as caught:
        parse_object_url(url)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("url", ["s3://bad_bucket!/x", "s3://a b/x", "s3://büc/x"])
def test_s3_bucket_characters_are_checked(url: str) -> None:
    with pytest.raises(ArgumentError, match="not a valid bucket name for s3://"):
        parse_object_url(url)


def test_url_forms_that_name_the_same_store() -> None:
    assert parse_object_url("s3://b") == ("s3", "b", "")
    assert parse_object_url("s3://b/") == ("s3", "b", "")
    assert parse_object_url("s3://b/a/b/") == ("s3", "b", "a/b")
    assert parse_object_url("S3://Legacy_Bucket/p") == ("s3", "Legacy_Bucket", "p")
    assert parse_object_url("s3://b/with space/ünï/50%") == ("s3", "b", "with space/ünï/50%")


def test_scheme_in_upper_case_opens_the_object_store(hermetic_env: Path) -> None:
    home = RegistryHome(hermetic_env, "argument")
    store = open_blob_backend("S3://bucket/p", home)
    assert isinstance(store, ObjectBlobStore) and store.url == "s3://bucket/p"


@pytest.mark.parametrize("url", ["s3:/bucket/p", "s3:bucket", "gs:/b/p", "azure:/c/p"])
def test_a_url_a_slash_short_is_not_taken_for_a_local_directory(
    url: str, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    with pytest.raises(ArgumentError, match="not supported"):
        open_blob_backend(url, RegistryHome(hermetic_env, "argument"))
    Registry.open(hermetic_env, create=True).close()
    monkeypatch.setenv("ADAPTERS_BLOB_URL", url)
    shown = run("push", str(write_lora(tmp_path / "a", 1)), "--name", "x")
    assert shown.exit_code == 1 and one_line_error(shown), shown.output
    assert not any(":" in path.name for path in hermetic_env.iterdir())
    # A local directory with a colon in its name is still reachable.
    local = open_blob_backend("./s3:dir", RegistryHome(hermetic_env, "argument"))
    assert isinstance(local, BlobStore)


def test_doctor_says_the_variable_overrides_registry_json(
    monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    monkeypatch.delenv("ADAPTERS_BLOB_URL", raising=False)
    Registry.open(hermetic_env, create=True).close()
    marker = hermetic_env / "registry.json"
    settings = json.loads(marker.read_text())
    marker.write_text(json.dumps({**settings, "blob_url": str(tmp_path / "configured")}))
    assert "overrides" not in run("doctor").output
    monkeypatch.setenv("ADAPTERS_BLOB_URL", str(tmp_path / "from-env"))
    report = run("doctor", "--json")
    assert report.exit_code == 0, report.output  # a note, not a problem
    data = json.loads(report.stdout)
    assert data["blob_store"] == str(tmp_path / "from-env")
    notes = [f["what"] for f in data["findings"] if f["check"] == "store"]
    assert notes == [
        f"ADAPTERS_BLOB_URL={tmp_path / 'from-env'} overrides blob_url "
        f"{tmp_path / 'configured'} in {marker}"
    ]


def test_azure_without_an_account_names_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in [v for v in os.environ if v.startswith("AZURE_")]:
        monkeypatch.delenv(var)
    store = ObjectBlobStore("az://adapters/p", BlobCache(tmp_path / "cache"))
    with pytest.raises(BlobStoreError) as caught:
        store.exists("0" * 64)
    message = str(caught.value)
    assert "AZURE_STORAGE_ACCOUNT_NAME" in message and "\n" not in message
    assert "reachable" not in message  # nothing to retry: a setting is missing


# -- credentials and endpoints on the real server -------------------------------------------


def test_aws_profile_from_a_credentials_file(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    use_s3(s3_server, monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_REGION")  # us-east-1 is taken, as the AWS tools do
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        f"[team]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    config = tmp_path / "aws-config"
    config.write_text("[profile team]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "team")
    reg = Registry.open(hermetic_env, create=True)
    reg.push(write_lora(tmp_path / "a", 1), name="x")
    assert reg.verify("x").ok
    reg.close()
    assert run("doctor", "--write-check").exit_code == 0

    monkeypatch.setenv("AWS_PROFILE", "nope")
    shown = run("doctor")
    assert shown.exit_code == 1
    store_errors = [line for line in shown.output.splitlines() if "[store]" in line]
    assert len(store_errors) == 1 and "AWS_PROFILE=nope" in store_errors[0], shown.output
    assert "reachable" not in store_errors[0] and SECRET_KEY not in shown.output


def test_endpoint_with_a_path_is_named_in_the_error(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = use_s3(s3_server, monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint + "/")  # a trailing slash is fine
    store = ObjectBlobStore(url, BlobCache(tmp_path / "cache"))
    assert store.exists(store.put_bytes(b"ok").sha256)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint + "/s3")
    store = ObjectBlobStore(url, BlobCache(tmp_path / "cache"))
    with pytest.raises(BlobStoreError, match="does not exist") as caught:
        list(store.iter_digests())
    assert f"AWS_ENDPOINT_URL={s3_server.endpoint}/s3" in str(caught.value)


def test_a_bucket_name_the_server_refuses_is_not_called_an_outage(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_s3(s3_server, monkeypatch)
    store = ObjectBlobStore("s3://Adapters-Test/p", BlobCache(tmp_path / "cache"))
    with pytest.raises(BlobStoreError) as caught:
        store.put_bytes(b"data")
    message = str(caught.value)
    assert "bucket name" in message and "reachable" not in message and "\n" not in message


# -- the cache directory --------------------------------------------------------------------


def test_an_unusable_cache_directory_is_one_line(
    object_url: str, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    reg = Registry.open(hermetic_env, create=True)
    reg.push(write_lora(tmp_path / "a", 1), name="x")
    reg.close()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(blocker / "cache"))
    exported = run("export", "x", str(tmp_path / "out"))
    assert exported.exit_code == 1 and one_line_error(exported), exported.output
    assert "ADAPTERS_CACHE_DIR" in exported.stderr and not (tmp_path / "out").exists()
    doctor = run("doctor", "--json")
    assert doctor.exit_code == 1
    report = json.loads(doctor.stdout)
    [cache] = [f for f in report["findings"] if "the blob cache" in f["what"]]
    assert cache["severity"] == "warning" and "ADAPTERS_CACHE_DIR" in cache["what"]
    assert "blobs" in report["checked"]  # a cache that cannot fill still lets the store be checked


def test_a_version_larger_than_the_cache_still_verifies_exports_and_loads(
    object_url: str, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    from support.peft_adapters import make_adapter

    made = make_adapter("lora", tmp_path / "a", seed=1)
    reg = Registry.open(hermetic_env, create=True)
    reg.push(made.directory, name="x")
    reg.close()
    monkeypatch.setenv("ADAPTERS_CACHE_SIZE", "1")  # smaller than any one file
    reg = Registry.open(hermetic_env)
    report = reg.verify("x")
    assert report.ok, [c for c in report.checks if c.status == "fail"]
    with reg.load("x", made.base_factory(), allow_unverified_base=True):
        pass
    reg.close()
    assert run("export", "x", str(tmp_path / "out")).exit_code == 0


# -- blobs copy -----------------------------------------------------------------------------


def test_blobs_copy_takes_relative_paths_from_the_current_directory(
    monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    reg = Registry.open(hermetic_env, create=True)
    reg.push(write_lora(tmp_path / "a", 1), name="x")
    held = set(reg.blobs.iter_digests())
    reg.close()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    copied = run("blobs", "copy", "-", "backup", "--json")
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.stdout)["target"] == str(work / "backup")
    assert set(BlobStore(work / "backup").iter_digests()) == held
    assert not (hermetic_env / "backup").exists()


def test_blobs_copy_refuses_a_source_without_blobs(
    monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    Registry.open(hermetic_env, create=True).close()
    shown = run("blobs", "copy", str(tmp_path / "no-such-dir"), str(tmp_path / "target"))
    assert shown.exit_code == 1 and one_line_error(shown), shown.output
    assert "holds no blobs" in shown.stderr and not (tmp_path / "target").exists()


def test_blobs_copy_of_many_small_blobs_lists_the_target_once(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    url = use_s3(s3_server, monkeypatch)
    monkeypatch.delenv("ADAPTERS_BLOB_URL")
    reg = Registry.open(hermetic_env, create=True)
    local = reg.blobs
    digests = {local.put_bytes(f"blob {i}".encode()).sha256 for i in range(120)}
    large = local.put_bytes(os.urandom(9 * 1024**2)).sha256  # over SMALL_BLOB: alone
    first = reg.copy_blobs(None, url)
    assert (first.copied, first.skipped) == (121, 0)
    target = ObjectBlobStore(url, BlobCache(tmp_path / "cache"))
    assert dict(target.iter_sizes()) == dict(local.iter_sizes())
    assert target.check(large) is None and all(target.check(d) is None for d in digests)
    # Resuming asks the target for its listing, not about each blob: every request is
    # counted by a proxy that answers each distinct one once with 503 SlowDown.
    with ThrottlingProxy(s3_server.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        again = reg.copy_blobs(None, url)
    assert (again.copied, again.skipped) == (0, 121)
    assert proxy.throttled <= 3, proxy.throttled
    reg.close()


class _CountingProxy(ThrottlingProxy):
    """Forwards every request (throttles none) and counts them by method and path."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.requests: Counter[tuple[str, str]] = Counter()

    def _first_time(self, method: str, path: str) -> bool:
        with self._lock:
            self.requests[(method, path.split("?")[0])] += 1
        return False


def test_a_cold_verify_downloads_each_blob_once(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    use_s3(s3_server, monkeypatch)
    reg = Registry.open(hermetic_env, create=True)
    pushed = reg.push(write_lora(tmp_path / "a", 1), name="x")
    reg.close()
    with _CountingProxy(s3_server.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        reg = Registry.open(hermetic_env)
        blobs = reg.blobs
        assert isinstance(blobs, ObjectBlobStore)
        assert reg.verify("x").ok
        gets = {path: n for (method, path), n in proxy.requests.items() if method == "GET"}
        for entry in pushed.version.files:
            assert gets[f"/{BUCKET}/{blobs.key(entry.sha256)}"] == 1
        proxy.requests.clear()
        assert reg.verify("x").ok  # warm: the store is still re-hashed, once per blob
        gets = {path: n for (method, path), n in proxy.requests.items() if method == "GET"}
        assert sorted(gets.values()) == [1] * len(pushed.version.files)
        reg.close()


def test_whitespace_around_the_setting_is_not_part_of_the_prefix(
    monkeypatch: pytest.MonkeyPatch, hermetic_env: Path
) -> None:
    Registry.open(hermetic_env, create=True).close()
    monkeypatch.setenv("ADAPTERS_BLOB_URL", " s3://bucket/team \n")
    reg = Registry.open(hermetic_env)
    assert isinstance(reg.blobs, ObjectBlobStore) and reg.blobs.url == "s3://bucket/team"
    reg.close()
    monkeypatch.delenv("ADAPTERS_BLOB_URL")
    marker = hermetic_env / "registry.json"
    settings = json.loads(marker.read_text())
    marker.write_text(json.dumps({**settings, "blob_url": "s3://bucket/team "}))
    reg = Registry.open(hermetic_env)
    assert reg.blobs.url == "s3://bucket/team"
    reg.close()


def test_blobs_copy_to_a_target_that_cannot_be_written_is_one_line(
    hermetic_env: Path, tmp_path: Path
) -> None:
    reg = Registry.open(hermetic_env, create=True)
    reg.push(write_lora(tmp_path / "a", 1), name="x")
    reg.close()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    shown = run("blobs", "copy", "-", str(blocker / "target"))
    assert shown.exit_code == 1 and one_line_error(shown), shown.output
    assert "cannot write under" in shown.stderr and "TARGET" in shown.stderr
    assert [p.name for p in (hermetic_env / "tmp").iterdir()] == []
