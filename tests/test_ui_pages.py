"""The web UI of a real ``adapters server`` process, driven over HTTP: sign-in and
sessions, CSRF, every page on a populated registry, search and filters, namespaces,
roles, a gate-refused alias move, and hostile text rendered inert."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import Registry

XSS = "<script>alert(1)</script>"
XSS_TAG = "<img src=x onerror=alert(2)>"
QUOTES_METRIC = "f1\"'&x"
QUOTES_DATASET = "ds\"'&y"


@pytest.fixture(scope="module")
def site(served: ServedRegistry, tmp_path_factory: pytest.TempPathFactory) -> ServedRegistry:
    root = tmp_path_factory.mktemp("ui")
    (served.home / "policy.json").write_text(
        json.dumps({"version": 1, "rules": [
            {"alias": "prod", "evals": [{"metric": "accuracy", "min": 0.9}]}]})
    )  # fmt: skip
    with Registry.open(served.home, database_url=served.database_url) as local:
        local.push(write_adapter(root / "a", seed=1), name="team/model",
                   evals={"accuracy": 0.5}, tags={"stage": XSS_TAG})  # fmt: skip
        local.push(write_adapter(root / "b", seed=2), name="team/model", evals={"accuracy": 0.95})
        local.describe("team/model@1", XSS)
        local.record_eval("team/model@1", {QUOTES_METRIC: 0.1}, dataset=QUOTES_DATASET, notes=XSS)
        local.combine(["team/model@1", "team/model@2"], name="team/combo", method="linear",
                      weights=[0.7, 0.3])  # fmt: skip
        local.push(write_adapter(root / "c", seed=3), name="secret/zebra",
                   tags={"stage": "zebra"})  # fmt: skip
        local.set_alias("team/model@2", "staging")
    return served


def signed_in(site: ServedRegistry, token: str) -> httpx2.Client:
    client = httpx2.Client(base_url=site.url, timeout=120)
    page = client.get("/ui/signin")
    response = client.post("/ui/signin", data={"csrf": csrf_of(page.text), "token": token})
    assert response.status_code == 303, response.text
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@pytest.fixture
def maintainer(site: ServedRegistry) -> Iterator[httpx2.Client]:
    client = signed_in(site, site.tokens["maintainer"])
    yield client
    client.close()


def test_pages_need_sign_in_and_cookie_is_httponly_strict(site: ServedRegistry) -> None:
    client = httpx2.Client(base_url=site.url)
    assert client.get("/ui/").status_code == 303
    page = client.get("/ui/signin")
    assert 'data-testid="signin-form"' in page.text
    response = client.post(
        "/ui/signin", data={"csrf": csrf_of(page.text), "token": site.tokens["reader"]}
    )
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert site.tokens["reader"] not in cookie
    assert "Secure" not in cookie  # plain http here; https sets it
    assert client.get("/ui/").status_code == 200
    assert site.tokens["reader"] not in site.server.access_log()
    # Signing out ends the session.
    home = client.get("/ui/")
    assert client.post("/ui/signout", data={"csrf": csrf_of(home.text)}).status_code == 303
    assert client.get("/ui/").status_code == 303


def test_wrong_token_and_forged_cookie_are_refused(site: ServedRegistry) -> None:
    client = httpx2.Client(base_url=site.url)
    page = client.get("/ui/signin")
    response = client.post("/ui/signin", data={"csrf": csrf_of(page.text), "token": "adp_nope"})
    assert response.status_code == 401 and 'data-testid="error"' in response.text
    forged = httpx2.Client(base_url=site.url, cookies={"adapters_session": "eyJ9.bad"})
    assert forged.get("/ui/").status_code == 303


def test_revoked_token_ends_its_session(site: ServedRegistry) -> None:
    with Registry.open(site.home, database_url=site.database_url) as local:
        secret = local.create_token("short-lived", "reader").secret
    client = signed_in(site, secret)
    assert client.get("/ui/").status_code == 200
    with Registry.open(site.home, database_url=site.database_url) as local:
        local.revoke_token("short-lived")
    assert client.get("/ui/").status_code == 303


def test_csrf_missing_or_wrong_is_403_and_changes_nothing(
    site: ServedRegistry, maintainer: httpx2.Client
) -> None:
    for data in ({"ref": "team/model@1", "reason": "x"},
                 {"ref": "team/model@1", "reason": "x", "csrf": "wrong"}):  # fmt: skip
        response = maintainer.post("/ui/actions/yank", data=data)
        assert response.status_code == 403
    with Registry.open(site.home, database_url=site.database_url) as local:
        assert local.get("team/model@1").status == "active"
    # A sign-in without the token of its page is refused too.
    anonymous = httpx2.Client(base_url=site.url)
    response = anonymous.post("/ui/signin", data={"token": site.tokens["reader"]})
    assert response.status_code == 403


def test_every_page_renders(maintainer: httpx2.Client) -> None:
    pages = {
        "/ui/": 'data-testid="version-row"',
        "/ui/adapter?name=team/model": 'data-testid="alias-history"',
        "/ui/version?ref=team/model@1": 'data-testid="files-table"',
        "/ui/lineage?ref=team/combo@1": 'data-testid="lineage-edge"',
        "/ui/compare?a=team/model@1&b=team/model@2": 'data-testid="compare-evals"',
        "/ui/bases": 'data-testid="base-list"',
        "/ui/base?name=org/none": 'data-testid="base-name"',
        "/ui/audit": 'data-testid="audit-row"',
    }
    for url, marker in pages.items():
        response = maintainer.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        assert marker in response.text, url
        assert "default-src 'none'" in response.headers["content-security-policy"]
    version = maintainer.get("/ui/version?ref=team/model@1").text
    for testid in ("version-manifest", "evals-table", "training-data", "signatures",
                   "compat-verdict", "analysis-level", "alias-form", "yank-form"):  # fmt: skip
        assert f'data-testid="{testid}"' in version, testid
    graph = maintainer.get("/ui/lineage?ref=team/combo@1").text
    assert graph.count('data-testid="lineage-node"') == 3
    assert graph.count('data-testid="lineage-edge"') == 3 - 1
    assert "linear" in graph and "×0.7" in graph
    parent = maintainer.get("/ui/lineage?ref=team/model@1").text
    assert 'data-ref="team/combo@1"' in parent


def test_search_and_filters(maintainer: httpx2.Client) -> None:
    def refs(**params: Any) -> set[str]:
        html = maintainer.get("/ui/", params=params).text
        return set(re.findall(r'data-testid="version-row" data-ref="([^"]+)"', html))

    assert refs(q="combo") == {"team/combo@1"}
    assert refs(q="alert(1)") == {"team/model@1"}  # the description
    assert refs(q="onerror") == {"team/model@1"}  # a tag value
    assert refs(alias="staging") == {"team/model@2"}
    assert refs(metric="accuracy", min="0.9") == {"team/model@2"}
    assert refs(tag="stage") == {"team/model@1", "secret/zebra@1"}
    assert "team/combo@1" in refs(method="lora")
    bad = maintainer.get("/ui/", params={"metric": "accuracy"})
    assert bad.status_code == 400 and 'data-testid="error"' in bad.text


def test_namespace_sees_nothing_outside(site: ServedRegistry) -> None:
    client = signed_in(site, site.tokens["team-reader"])
    for url in ("/ui/", "/ui/?q=zebra", "/ui/audit", "/ui/adapter?name=team/model",
                "/ui/version?ref=team/model@1", "/ui/lineage?ref=team/model@1",
                "/ui/bases", "/ui/?tag=stage"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, url
        assert "secret" not in response.text, url
    for url in ("/ui/version?ref=secret/zebra@1", "/ui/lineage?ref=secret/zebra@1",
                "/ui/adapter?name=secret/zebra", "/ui/audit?name=secret/zebra",
                "/ui/compare?a=secret/zebra@1&b=team/model@1"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 404, url
        body = response.text.replace(url.replace("&", "&amp;"), "")
        assert "zebra" not in body, url


def test_roles_hide_forms_and_refuse_posts(site: ServedRegistry) -> None:
    reader = signed_in(site, site.tokens["reader"])
    page = reader.get("/ui/version?ref=team/model@2")
    assert 'data-testid="eval-form"' not in page.text
    assert 'data-testid="alias-form"' not in page.text
    csrf = csrf_of(page.text)
    refused = reader.post("/ui/actions/yank",
                          data={"csrf": csrf, "ref": "team/model@2", "reason": "x"})  # fmt: skip
    assert refused.status_code == 403
    writer = signed_in(site, site.tokens["writer"])
    page = writer.get("/ui/version?ref=team/model@2")
    assert 'data-testid="eval-form"' in page.text and 'data-testid="alias-form"' not in page.text
    refused = writer.post("/ui/actions/alias", data={"csrf": csrf_of(page.text),
                          "ref": "team/model@2", "alias": "canary"})  # fmt: skip
    assert refused.status_code == 403
    done = writer.post("/ui/actions/eval", data={"csrf": csrf_of(page.text),
                       "ref": "team/model@2", "metric": "bleu", "value": "0.4"})  # fmt: skip
    assert done.status_code == 303
    with Registry.open(site.home, database_url=site.database_url) as local:
        assert "canary" not in local.get("team/model@2").aliases
        assert any(
            e.metric == "bleu" and e.actor == "writer" for e in local.get("team/model@2").evals
        )
        assert local.get("team/model@2").status == "active"
    team = signed_in(site, site.tokens["team-maintainer"])
    csrf = csrf_of(team.get("/ui/").text)
    response = team.post("/ui/actions/yank",
                         data={"csrf": csrf, "ref": "secret/zebra@1", "reason": "x"})  # fmt: skip
    assert response.status_code == 404 and "zebra" not in response.text
    anonymous = httpx2.Client(base_url=site.url)
    csrf = csrf_of(anonymous.get("/ui/signin").text)
    response = anonymous.post(
        "/ui/actions/yank", data={"csrf": csrf, "ref": "team/model@2", "reason": "x"}
    )
    assert response.status_code == 403


def test_gate_refused_alias_shows_report_then_allowed(
    site: ServedRegistry, maintainer: httpx2.Client
) -> None:
    page = maintainer.get("/ui/version?ref=team/model@1")
    response = maintainer.post("/ui/actions/alias", data={"csrf": csrf_of(page.text),
                               "ref": "team/model@1", "alias": "prod"})  # fmt: skip
    # Post/Redirect/Get: the refusal is shown at the version page's address, with its
    # status, as often as it is reloaded, and nothing is sent again.
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/ui/version?ref=team%2Fmodel%401&refused=")
    for _ in range(2):
        shown = maintainer.get(location)
        assert shown.status_code == 409
        assert 'data-testid="gate-report"' in shown.text and "accuracy" in shown.text
    # Only the session that was refused sees it, for that version, as signed.
    other = signed_in(site, site.tokens["maintainer"]).get(location)
    assert other.status_code == 200 and 'data-testid="gate-report"' not in other.text
    moved = location.replace("team%2Fmodel%401", "team%2Fmodel%402")
    assert 'data-testid="gate-report"' not in maintainer.get(moved).text
    forged = maintainer.get(location[:-3] + "abc")
    assert forged.status_code == 200 and 'data-testid="gate-report"' not in forged.text
    with Registry.open(site.home, database_url=site.database_url) as local:
        assert "prod" not in local.get("team/model@1").aliases
    response = maintainer.post("/ui/actions/alias", data={"csrf": csrf_of(page.text),
                               "ref": "team/model@2", "alias": "prod"})  # fmt: skip
    assert response.status_code == 303
    moved = maintainer.get(response.headers["location"])
    assert 'data-testid="flash"' in moved.text
    with Registry.open(site.home, database_url=site.database_url) as local:
        assert "prod" in local.get("team/model@2").aliases
        assert local.log("team/model@2", actions=["alias"])[-1].actor == "maintainer"


def test_yank_unyank_tags_and_description(site: ServedRegistry, maintainer: httpx2.Client) -> None:
    csrf = csrf_of(maintainer.get("/ui/").text)
    ref = "team/combo@1"
    post = lambda action, **data: maintainer.post(  # noqa: E731
        f"/ui/actions/{action}", data={"csrf": csrf, "ref": ref, **data}
    )
    assert post("yank", reason="bad mix").status_code == 303
    assert 'data-testid="yanked"' in maintainer.get(f"/ui/version?ref={ref}").text
    assert post("unyank").status_code == 303
    assert post("tags", tags="team=nlp\nowner=ana").status_code == 303
    assert post("describe", description="a mix").status_code == 303
    refused = post("tags", tags="no equals sign")
    assert refused.status_code == 303
    shown = maintainer.get(refused.headers["location"])
    assert shown.status_code == 400 and "KEY=VALUE" in shown.text
    with Registry.open(site.home, database_url=site.database_url) as local:
        version = local.get(ref)
        assert version.status == "active"
        assert version.tags == {"team": "nlp", "owner": "ana"}
        assert version.description == "a mix"


def test_hostile_text_is_inert_everywhere(maintainer: httpx2.Client) -> None:
    for url in ("/ui/", "/ui/?q=script", "/ui/adapter?name=team/model",
                "/ui/version?ref=team/model@1", "/ui/lineage?ref=team/model@1",
                "/ui/compare?a=team/model@1&b=team/model@2", "/ui/audit"):  # fmt: skip
        html = maintainer.get(url).text
        assert "<script" not in html and "<img" not in html, url
        assert QUOTES_METRIC not in html and QUOTES_DATASET not in html, url
    version = maintainer.get("/ui/version?ref=team/model@1").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in version
    assert "f1&#34;&#39;&amp;x" in version and "ds&#34;&#39;&amp;y" in version
    # Audit details are JSON as recorded, escaped once for HTML (no \u003c escapes).
    audit = maintainer.get("/ui/audit?name=team/model").text
    assert "\\u003c" not in audit and "&lt;script&gt;alert(1)&lt;/script&gt;" in audit


def test_anonymous_read_shows_pages_without_actions(site: ServedRegistry, tmp_path: Path) -> None:
    from support.server import running_server

    with running_server(site.home, {"ADAPTERS_DATABASE_URL": site.database_url},
                        ("--anonymous-read",)) as server:  # fmt: skip
        client = httpx2.Client(base_url=server.url, timeout=60)
        page = client.get("/ui/version?ref=team/model@2")
        assert page.status_code == 200 and 'data-testid="anonymous"' in page.text
        assert '<form method="post" action="/ui/actions' not in page.text


def test_a_page_number_that_is_not_ascii_digits_is_refused(maintainer: httpx2.Client) -> None:
    # '²' is a digit to str.isdigit() but not to int(): a 400, as on the JSON API.
    for page in ("²", "x", "1" * 10):
        response = maintainer.get("/ui/", params={"page": page})
        assert response.status_code == 400, (page, response.text)
    assert maintainer.get("/ui/", params={"page": "2"}).status_code == 200
