"""The stored version key sorts exactly as PEP 440, and specifier ranges never drop a match."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from registry.store.catalog.version_order import specifier_range, version_key

SMALL = st.integers(min_value=0, max_value=12) | st.integers(min_value=0, max_value=10**30)
LOCAL_PART = st.integers(min_value=0, max_value=99).map(str) | st.from_regex(
    r"[a-z][a-z0-9]{0,4}", fullmatch=True
)


@st.composite
def versions(draw: st.DrawFn) -> Version:
    text = ""
    if draw(st.booleans()) and draw(st.booleans()):
        text += f"{draw(st.integers(0, 3))}!"
    text += ".".join(str(draw(SMALL)) for _ in range(draw(st.integers(1, 4))))
    if draw(st.booleans()):
        text += draw(st.sampled_from(["a", "b", "rc"])) + str(draw(SMALL))
    if draw(st.booleans()):
        text += f".post{draw(SMALL)}"
    if draw(st.booleans()):
        text += f".dev{draw(SMALL)}"
    if draw(st.booleans()):
        text += "+" + ".".join(draw(st.lists(LOCAL_PART, min_size=1, max_size=3)))
    return Version(text)


@given(versions(), versions())
@settings(max_examples=1500, deadline=None)
def test_key_order_is_version_order(a: Version, b: Version) -> None:
    ka, kb = version_key(a), version_key(b)
    assert (ka < kb) == (a < b)
    assert (ka == kb) == (a == b)
    assert ka.isascii() and ka.isprintable()


def test_known_orders() -> None:
    ordered = [
        "0.9",
        "1.0.dev1",
        "1.0a1.dev1",
        "1.0a1",
        "1.0a2",
        "1.0b1",
        "1.0rc1",
        "1.0",
        "1.0+abc",
        "1.0+abc.5",
        "1.0+5",
        "1.0.post1.dev1",
        "1.0.post1",
        "1.0.1",
        "1.9",
        "1.10",
        "2",
        "10",
        "1!0.1",
    ]
    keys = [version_key(v) for v in ordered]
    assert keys == sorted(keys)
    assert version_key("1.0") == version_key("1.0.0") == version_key("1")


SPEC_CLAUSE = st.tuples(
    st.sampled_from([">=", ">", "<=", "<", "==", "!=", "~="]), versions()
).filter(lambda c: c[1].local is None or c[0] in ("==", "!="))


@given(st.lists(SPEC_CLAUSE, min_size=1, max_size=3), st.lists(versions(), max_size=30))
@settings(max_examples=500, deadline=None)
def test_specifier_range_keeps_every_match(
    clauses: list[tuple[str, Version]], candidates: list[Version]
) -> None:
    clauses = [(op, v) for op, v in clauses if not (op == "~=" and len(v.release) < 2)]
    if not clauses:
        return
    spec = SpecifierSet(",".join(f"{op}{v}" for op, v in clauses))
    low, high = specifier_range(spec)
    for candidate in candidates:
        if spec.contains(candidate, prereleases=True):
            key = version_key(candidate)
            assert low is None or key >= low, (str(spec), str(candidate))
            assert high is None or key < high, (str(spec), str(candidate))


# -- resolution reads a page at a time and agrees with the full scan ---------------------

SPECS = [
    "",
    ">=1.0,<2",
    ">1.5",
    "<=2.0",
    "<2",
    "==1.5",
    "==1.5.*",
    "~=1.2",
    "!=3.0",
    ">=0",
    "<0.1",
    ">=2.0rc1",
    "==3.0a1",
    ">=3.0a1",
    ">3.0",
    "==1.5.post1",
    "<1.5.post1",
    ">=1.0,!=1.9,<1.10",
    "===1.5",
    ">=3.5",
    ">=4.0a1",
    "<4.1",
    ">4.0rc1",
]


@pytest.mark.parametrize("page", [3, 32])
def test_paged_resolution_agrees_with_the_full_scan(
    database_url: str, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from registry.store.catalog import resolve

    monkeypatch.setattr(resolve, "FIRST_PAGE", page)

    from sqlalchemy import text
    from support.lifecycle import insert, manifest

    from registry.errors import NotFoundError
    from registry.store.catalog.catalog import Catalog
    from registry.store.refs import Candidate, parse_ref, select_version

    rng = random.Random(7)
    texts = [f"{major}.{minor}" for major in range(4) for minor in range(12)]
    texts += ["1.5.post1", "2.0rc1", "2.0a1", "3.0a1", "3.0b2", "3.1rc1", "1.5+local"]
    # Pre-releases above every final release: a first page can hold nothing else.
    texts += ["4.0a1", "4.0a2", "4.0b1", "4.0rc1", "4.0rc2", "4.1.dev1"]
    rng.shuffle(texts)
    catalog = Catalog(database_url, create=True)
    try:
        for i, version in enumerate(texts):
            insert(catalog, "x", manifest(f"v{i}"), version=version)
        yanked = {"3.11", "3.10", "1.5", "2.0rc1"} | set(rng.sample(texts, 8))
        with catalog.engine.begin() as connection:
            for version in yanked:
                connection.execute(
                    text("UPDATE adapter_versions SET status = 'yanked' WHERE version = :v"),
                    {"v": str(Version(version))},
                )
        everything = [Candidate(str(Version(t)), t in yanked) for t in texts]
        for spec in SPECS:
            ref = parse_ref(f"x{spec}")
            try:
                expected: str = select_version(ref, everything).version
            except NotFoundError as exc:
                expected = f"error: {exc}"
            try:
                got = catalog.resolve(ref).version
            except NotFoundError as exc:
                got = f"error: {exc}"
            assert (spec, got) == (spec, expected)
        for version in texts:
            assert catalog.resolve(parse_ref(f"x@{version}")).version == str(Version(version))
    finally:
        catalog.close()
