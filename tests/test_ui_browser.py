"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against a real
``adapters server`` process over one populated registry per module (support/ui_site.py).

With ``ADAPTERS_UI_SCREENSHOTS=1`` these tests also write docs/ui/*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from support.browser import PageErrors, has_horizontal_overflow, screenshot, screenshot_at
from support.server import ServedRegistry
from support.ui_site import HOSTILE, HOSTILE_DATASET, HOSTILE_METRIC, PWNED_ID, ui_site

from registry import Registry

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedRegistry]:
    with ui_site(tmp_path_factory.mktemp("ui")) as running:
        yield running


def local(site: ServedRegistry) -> Registry:
    return Registry.open(site.home, database_url=site.database_url)


def goto(page: Page, url: str) -> Response:
    response = page.goto(url)
    assert response is not None
    return response


def sign_in(page: Page, site: ServedRegistry, token: str) -> None:
    goto(page, f"{site.url}/ui/signin")
    page.get_by_test_id("signin-token").fill(site.tokens[token])
    page.get_by_test_id("signin-submit").click()
    page.wait_for_url(f"{site.url}/ui/")
    assert page.get_by_test_id("signed-in-as").inner_text().startswith(token)


def version_url(site: ServedRegistry, ref: str) -> str:
    return f"{site.url}/ui/version?ref={quote(ref)}"


def submit(page: Page, form_testid: str) -> Response:
    """Submit a form by its button and return the response to the POST."""
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_test_id(form_testid).locator("button[type=submit]").click()
    page.wait_for_load_state()
    return posted.value


def test_the_browser_reaches_the_server(site: ServedRegistry, page: Page) -> None:
    response = goto(page, f"{site.url}/healthz")
    assert response.status == 200


def test_sign_in_search_and_open_a_version(site: ServedRegistry, page: Page) -> None:
    goto(page, f"{site.url}/ui/")
    page.wait_for_url(re.compile(r"/ui/signin"))
    screenshot(page, "signin")
    sign_in(page, site, "reader")
    rows = page.get_by_test_id("version-row")
    assert rows.count() == 5  # every version, team/ included: this reader has no namespace
    screenshot(page, "list")

    page.get_by_test_id("search-box").fill("combo")
    page.get_by_test_id("search-submit").click()
    page.wait_for_url(re.compile(r"q=combo"))
    assert [rows.nth(i).get_attribute("data-ref") for i in range(rows.count())] == ["chat-combo@1"]
    rows.first.get_by_role("link", name="chat-combo@1").click()
    page.wait_for_url(re.compile(r"/ui/version\?"))
    assert page.get_by_test_id("version-title").inner_text() == "chat-combo@1"
    assert page.get_by_test_id("file-row").count() == 2
    assert "combine of chat-lora@1 ×0.7, chat-lora@2 ×0.3" in page.inner_text("main")
    screenshot(page, "version")


def test_the_session_cookie_is_http_only_and_signing_out_ends_it(
    site: ServedRegistry, page: Page
) -> None:
    sign_in(page, site, "writer")
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert site.tokens["writer"] not in cookie["value"]
    assert page.evaluate("() => document.cookie") == ""  # no script can read it
    page.get_by_test_id("signout").click()
    page.wait_for_url(re.compile(r"/ui/signin"))
    goto(page, version_url(site, "chat-lora@2"))
    assert page.get_by_test_id("signed-in-as").count() == 0
    assert page.get_by_test_id("eval-form").count() == 0


def test_a_maintainer_edits_tags_yanks_and_unyanks(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "maintainer")
    goto(page, version_url(site, "chat-int8@1"))
    page.locator("#tags-text").fill("stage=beta\nowner=nlp-team")
    assert submit(page, "tags-form").status == 303
    assert page.get_by_test_id("tags").inner_text().split() == ["owner=nlp-team", "stage=beta"]
    page.locator("#yank-reason").fill("bad eval data")
    assert submit(page, "yank-form").status == 303
    assert page.get_by_test_id("yanked").is_visible()
    goto(page, f"{site.url}/ui/?status=yanked")
    refs = page.get_by_test_id("version-row").evaluate_all("rows => rows.map(r => r.dataset.ref)")
    assert refs == ["chat-int8@1"]
    goto(page, version_url(site, "chat-int8@1"))
    assert submit(page, "unyank-form").status == 303
    assert page.get_by_test_id("yanked").count() == 0
    with local(site) as reg:
        version = reg.get("chat-int8@1")
    assert version.status == "active" and version.tags == {"owner": "nlp-team", "stage": "beta"}


def test_sign_in_refuses_an_unknown_token(site: ServedRegistry, page: Page) -> None:
    goto(page, f"{site.url}/ui/signin")
    page.get_by_test_id("signin-token").fill("adp_not-a-real-token")
    response = submit(page, "signin-form")
    assert response.status == 401
    assert "unknown, expired or revoked" in page.get_by_test_id("error").inner_text()
    assert page.get_by_test_id("signed-in-as").count() == 0


def test_the_lineage_graph_is_drawn(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "reader")
    goto(page, f"{site.url}/ui/lineage?ref=chat-combo%401")
    graph = page.get_by_test_id("lineage-graph")
    nodes = graph.get_by_test_id("lineage-node")
    edges = graph.get_by_test_id("lineage-edge")
    assert sorted(nodes.nth(i).get_attribute("data-ref") or "" for i in range(nodes.count())) == [
        "chat-combo@1", "chat-lora@1", "chat-lora@2",
    ]  # fmt: skip
    assert sorted(
        (edges.nth(i).get_attribute("data-source"), edges.nth(i).get_attribute("data-target"))
        for i in range(edges.count())
    ) == [("chat-lora@1", "chat-combo@1"), ("chat-lora@2", "chat-combo@1")]
    assert {edges.nth(i).get_attribute("data-operation") for i in range(2)} == {"combine"}
    # Drawn, not only present: every box and edge has an area on the screen.
    for item in (*(nodes.nth(i) for i in range(3)), *(edges.nth(i) for i in range(2))):
        box = item.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
    labels = " ".join(edges.nth(i).text_content() or "" for i in range(2))
    assert "0.7" in labels and "0.3" in labels
    screenshot(page, "lineage")
    nodes.filter(has_text="chat-lora@2").click()
    page.wait_for_url(re.compile(r"/ui/version\?"))
    assert page.get_by_test_id("version-title").inner_text() == "chat-lora@2"


def test_compare_two_versions(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "reader")
    goto(page, version_url(site, "chat-lora@1"))
    page.get_by_test_id("nav-compare").click()
    page.get_by_test_id("compare-a").fill("chat-lora@1")
    page.get_by_test_id("compare-b").fill("chat-lora@2")
    page.get_by_test_id("compare-submit").click()
    page.wait_for_url(re.compile(r"b=chat-lora"))
    evals = page.get_by_test_id("compare-evals")
    row = evals.locator("tr", has_text="accuracy")
    assert [c.strip() for c in row.locator("td").all_inner_texts()][:5] == [
        "accuracy", "gsm8k", "", "0.8", "0.85",
    ]  # fmt: skip
    assert page.get_by_test_id("compare-fields").locator("tbody tr").count() >= 1
    assert page.get_by_test_id("compare-similarity").locator("tbody tr").count() == 4
    screenshot(page, "compare")


def test_compare_with_from_a_version_opens_the_form_with_it_filled_in(
    site: ServedRegistry, page: Page
) -> None:
    sign_in(page, site, "reader")
    goto(page, version_url(site, "chat-lora@1"))
    page.get_by_test_id("compare-link").click()
    page.wait_for_url(re.compile(r"/ui/compare\?"))
    assert page.get_by_test_id("compare-form").count() == 1, page.inner_text("main")
    assert page.get_by_test_id("compare-a").input_value() == "chat-lora@1"
    assert page.get_by_test_id("compare-b").input_value() == ""
    picks = page.get_by_test_id("compare-pick")
    assert picks.all_inner_texts() == ["chat-lora@2"]  # the adapter's other versions
    screenshot(page, "compare-pick")
    picks.first.click()
    page.wait_for_url(re.compile(r"b=chat-lora"))
    assert page.get_by_test_id("compare-evals").count() == 1


def test_base_page_lists_its_adapters_and_the_model_tree(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "reader")
    goto(page, f"{site.url}/ui/base?name=tiny%2Fllama")
    refs = page.get_by_test_id("version-row").evaluate_all("rows => rows.map(r => r.dataset.ref)")
    assert sorted(refs) == ["chat-combo@1", "chat-lora@1", "chat-lora@2", "team/summarise@1"]
    assert page.get_by_test_id("base-fingerprint").count() == 1
    related = page.get_by_test_id("related-base")
    assert "tiny/llama-int8" in related.inner_text() and "chat-int8@1" in related.inner_text()
    screenshot(page, "base")


def test_a_gate_refuses_the_promotion_until_the_eval_is_recorded(
    site: ServedRegistry, page: Page
) -> None:
    sign_in(page, site, "maintainer")
    goto(page, version_url(site, "chat-lora@2"))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.locator("#al-alias").fill("prod")
    with page.expect_response(re.compile(r"/ui/version\?")) as shown:
        assert submit(page, "alias-form").status == 303  # Post/Redirect/Get
    assert shown.value.status == 409
    assert re.search(r"/ui/version\?ref=chat-lora%402&refused=", page.url), page.url

    def refused_report_is_shown() -> None:
        report = page.get_by_test_id("gate-report")
        assert "accuracy" in report.inner_text() and "0.9" in report.inner_text()
        assert page.get_by_test_id("gate-check").first.get_attribute("data-status") == "fail"
        assert page.get_by_test_id("aliases").inner_text() == "none"

    refused_report_is_shown()
    screenshot(page, "gate-refused")
    # Reloading shows the refusal again and sends nothing.
    assert len(posts) == 1
    reloaded = page.reload()
    assert reloaded is not None and reloaded.status == 409
    refused_report_is_shown()
    assert len(posts) == 1
    with local(site) as reg:
        assert "prod" not in reg.get("chat-lora@2").aliases
        evals = len(reg.get("chat-lora@2").evals)

    page.locator("#ev-metric").fill("accuracy")
    page.locator("#ev-value").fill("0.95")
    page.locator("#ev-dataset").fill("gsm8k")
    assert submit(page, "eval-form").status == 303
    assert page.get_by_test_id("flash").inner_text() == "Done: eval recorded."
    assert page.get_by_test_id("gate-report").count() == 0
    page.reload()
    assert page.get_by_test_id("flash").inner_text() == "Done: eval recorded."
    with local(site) as reg:
        assert len(reg.get("chat-lora@2").evals) == evals + 1  # recorded once, not on reload
    page.locator("#al-alias").fill("prod")
    page.locator("#al-note").fill("accuracy now 0.95")
    assert submit(page, "alias-form").status == 303
    assert page.get_by_test_id("flash").inner_text() == "Done: alias moved."
    assert "prod" in page.get_by_test_id("aliases").inner_text()
    with local(site) as reg:
        assert reg.get("chat-lora@prod").version == "2"
        moved = [e for e in reg.log("chat-lora@2") if "alias" in e.action]
    assert moved and moved[-1].actor == "maintainer"  # the token's owner, as the API records


def test_a_reader_is_denied_an_action(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "reader")
    goto(page, version_url(site, "chat-lora@2"))
    for form in ("eval-form", "tags-form", "description-form", "alias-form", "yank-form"):
        assert page.get_by_test_id(form).count() == 0
    # Post the form anyway, with the reader's own valid CSRF token: the role refuses it.
    page.evaluate(
        """() => {
        const csrf = document.querySelector('input[name=csrf]').value;
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/ui/actions/describe';
        form.dataset.testid = 'forged';
        for (const [k, v] of [['csrf', csrf], ['ref', 'chat-lora@2'], ['description', 'x']]) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = k; input.value = v; form.appendChild(input);
        }
        const button = document.createElement('button'); button.type = 'submit';
        form.appendChild(button); document.body.appendChild(form);
    }"""
    )
    response = submit(page, "forged")
    assert response.status == 403
    assert "needs a writer token" in page.get_by_test_id("error").inner_text()
    with local(site) as reg:
        assert reg.get("chat-lora@2").description != "x"


def test_a_reader_is_denied_another_namespace(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "team-reader")
    refs = page.get_by_test_id("version-row").evaluate_all("rows => rows.map(r => r.dataset.ref)")
    assert refs == ["team/summarise@1"]
    for path in (
        "/ui/version?ref=chat-lora%401",
        "/ui/adapter?name=chat-lora",
        "/ui/lineage?ref=chat-combo%401",
        "/ui/compare?a=team%2Fsummarise%401&b=chat-lora%401",
        "/ui/audit?name=chat-lora",
    ):
        response = goto(page, site.url + path)
        assert response.status == 404, path
        assert "chat-lora" not in page.inner_text("main"), path
    goto(page, f"{site.url}/ui/?q=chat")
    assert page.get_by_test_id("version-row").count() == 0
    goto(page, f"{site.url}/ui/audit")
    names = page.get_by_test_id("audit-row").all_inner_texts()
    assert names and not any("chat-" in text for text in names)


HOSTILE_PAGES = {
    "list": "/ui/",
    "search": "/ui/?q=chat",
    "adapter": "/ui/adapter?name=chat-lora",
    "version": "/ui/version?ref=chat-lora%401",
    "lineage": "/ui/lineage?ref=chat-combo%401",
    "compare": "/ui/compare?a=chat-lora%401&b=chat-lora%402",
    "base": "/ui/base?name=tiny%2Fllama",
    "audit": "/ui/audit",
    "audit-filtered": "/ui/audit?name=chat-lora",
}


def test_hostile_text_renders_as_inert_text_on_every_page(site: ServedRegistry, page: Page) -> None:
    errors = PageErrors()
    errors.watch(page)
    sign_in(page, site, "admin")  # an admin sees every form too (textareas hold the text)
    for name, path in HOSTILE_PAGES.items():
        goto(page, site.url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("() => 'pwned' + (window.__pwned === undefined)") == "pwnedtrue", name
        assert page.locator(f"#{PWNED_ID}").count() == 0, name
        assert page.locator("main script, main img, main svg[onload]").count() == 0, name
        text = page.inner_text("main")
        if name in ("version", "compare"):
            assert HOSTILE_METRIC in text and HOSTILE_DATASET in text, name
        if name in ("list", "search", "adapter", "version", "base"):
            # the description or tag is shown (shortened in lists), as the characters typed
            assert "<script>window.__pwned=1</script>" in text, name
    goto(page, version_url(site, "chat-lora@1"))
    assert page.get_by_test_id("description").inner_text() == HOSTILE
    assert page.locator("#desc-text").input_value() == HOSTILE
    assert f"note={HOSTILE}" in page.get_by_test_id("tags").inner_text()
    # The server's Content-Security-Policy would block an inline script that got through;
    # the browser reports that as a console error, which must not happen either.
    blocked = [e for e in errors.errors if "pwned" in e or "Content Security Policy" in e]
    assert not blocked, blocked


def test_forms_refuse_a_missing_or_wrong_csrf_token(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "writer")
    with local(site) as reg:
        before = reg.get("chat-combo@1").description
    for tamper in (
        "el => { el.value = 'forged-' + el.value.slice(7); }",
        "el => el.remove()",
        "el => { el.value = ''; }",
    ):
        goto(page, version_url(site, "chat-combo@1"))
        form = page.get_by_test_id("description-form")
        form.locator("input[name=csrf]").evaluate(tamper)
        form.locator("textarea").fill("tampered")
        response = submit(page, "description-form")
        assert response.status == 403, tamper
        assert "security token" in page.get_by_test_id("error").inner_text()
    with local(site) as reg:
        assert reg.get("chat-combo@1").description == before
    # The sign-in form is protected too (no signing a visitor into someone else's token).
    page.context.clear_cookies()
    goto(page, f"{site.url}/ui/signin")
    page.locator("input[name=csrf]").evaluate("el => el.remove()")
    page.get_by_test_id("signin-token").fill(site.tokens["admin"])
    assert submit(page, "signin-form").status == 403
    assert page.get_by_test_id("signed-in-as").count() == 0


def test_keyboard_reaches_the_search_box_and_the_first_result(
    site: ServedRegistry, page: Page
) -> None:
    sign_in(page, site, "reader")
    goto(page, f"{site.url}/ui/?q=chat-lora")
    first = page.get_by_test_id("version-row").first.locator("a").first
    first_href = first.get_attribute("href")

    def tab_until(selector: str, limit: int = 40) -> int:
        for presses in range(1, limit + 1):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => document.activeElement.matches({selector!r})"):
                return presses
        raise AssertionError(f"Tab never reached {selector}")

    tab_until("[data-testid=search-box]")
    tab_until(f"[data-testid=version-row] a[href='{first_href}']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/version\?"))
    assert page.get_by_test_id("version-title").inner_text() in ("chat-lora@1", "chat-lora@2")


@pytest.mark.parametrize(
    "path",
    ["/ui/", "/ui/version?ref=chat-lora%401", "/ui/lineage?ref=chat-combo%401",
     "/ui/compare?a=chat-lora%401&b=chat-lora%402", "/ui/audit", "/ui/signin",
     "/ui/base?name=tiny%2Fllama", "/ui/adapter?name=chat-lora", "/ui/compare?a=chat-lora%401"],
)  # fmt: skip
def test_a_narrow_screen_needs_no_sideways_scrolling(
    site: ServedRegistry, page: Page, path: str
) -> None:
    sign_in(page, site, "admin")
    page.set_viewport_size({"width": 375, "height": 800})
    goto(page, site.url + path)
    assert not has_horizontal_overflow(page), path


LINES = """el => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


@pytest.mark.parametrize("path", ["/ui/", "/ui/adapter?name=chat-lora", "/ui/audit"])
def test_list_rows_on_a_narrow_screen_are_cards_showing_every_field(
    site: ServedRegistry, page: Page, path: str
) -> None:
    sign_in(page, site, "admin")
    page.set_viewport_size({"width": 375, "height": 800})
    goto(page, site.url + path)
    table = page.locator("table.cards").first
    # Nothing scrolls sideways, not even inside the table's box.
    assert not table.evaluate("t => t.parentElement.scrollWidth > t.parentElement.clientWidth")
    row = table.locator("tbody tr").first
    cells = row.locator("td")
    assert cells.count() >= 5
    for i in range(cells.count()):
        cell = cells.nth(i)
        if not (cell.inner_text().strip() or cell.locator("*").count()):
            assert not cell.is_visible()  # an empty field takes no room
            continue
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, i
        # Each field is labelled, as the column header would have.
        label = cell.evaluate("c => getComputedStyle(c, '::before').content")
        assert label.strip('"') == cell.get_attribute("data-label"), i
    # No tall empty rows (the hostile text of chat-lora@1 makes the first rows long).
    plain = table.locator("tbody tr").last
    assert (plain.bounding_box() or {"height": 1e9})["height"] < 300
    if path == "/ui/":
        screenshot_at(page, "list-narrow", 375)


@pytest.mark.parametrize(
    ("path", "testid"),
    [("/ui/", "version-list"), ("/ui/audit", "audit-table"),
     ("/ui/version?ref=chat-lora%401", "evals-table")],
)  # fmt: skip
def test_dates_stay_on_one_line(site: ServedRegistry, page: Page, path: str, testid: str) -> None:
    sign_in(page, site, "admin")
    page.set_viewport_size({"width": 1000, "height": 800})
    goto(page, site.url + path)
    table = page.get_by_test_id(testid)
    dates = table.locator("td.date")
    assert dates.count() >= 1
    for i in range(dates.count()):
        assert dates.nth(i).evaluate(LINES) == 1, dates.nth(i).inner_text()
    # ... and the table still fits: nothing is cut off behind a sideways scroll.
    assert table.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth")


def test_audit_details_read_as_the_text_recorded(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "admin")
    for path in ("/ui/audit?name=chat-lora", "/ui/version?ref=chat-lora%401"):
        goto(page, site.url + path)
        details = " ".join(page.locator("code.details").all_inner_texts())
        assert HOSTILE in details.replace('\\"', '"'), path  # as typed, JSON-quoted
        assert "\\u003c" not in details and "\\u0027" not in details, path
        assert page.locator(f"#{PWNED_ID}").count() == 0


def test_audit_page_screenshot(site: ServedRegistry, page: Page) -> None:
    sign_in(page, site, "reader")
    goto(page, f"{site.url}/ui/audit?name=chat-lora")
    assert page.get_by_test_id("audit-row").count() >= 3
    screenshot(page, "audit")
