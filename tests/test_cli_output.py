"""What `list` and `show` print: pages with a note on the rest, one column per metric,
tables cut to the terminal width, colour only on a terminal, the config on request."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from support.lifecycle import insert, manifest, run
from support.sql_trace import traced, values_named

from registry import Registry
from registry.cli import main
from registry.cli.render import style, table


@pytest.fixture
def many(registry: Registry) -> Registry:
    """Names a..e with 20 versions each, inserted in a scrambled order."""
    for index in range(100):
        name = "abcde"[index % 5]
        insert(registry.catalog, f"team/{name}", manifest(index), version=f"1.{index // 5}")
    return registry


def test_list_pages_by_default_and_says_how_many_more(many: Registry) -> None:
    result = run("list", "--json")
    shown = [v["ref"] for v in json.loads(result.stdout)]
    assert len(shown) == 50
    # Name order, PEP 440 within a name (1.10 after 1.9), exactly as the full list.
    everything = [v.ref for v in many.list()]
    assert shown == everything[:50]
    assert shown[9:11] == ["team/a@1.9", "team/a@1.10"]
    assert "50 more versions match; show them with --limit 100 or --all" in result.stderr
    assert [v["ref"] for v in json.loads(run("list", "--all", "--json").stdout)] == everything
    assert run("list", "--all").stderr == ""
    last = run("list", "--limit", "99", "--reverse", "--json")
    assert [v["ref"] for v in json.loads(last.stdout)] == everything[::-1][:99]
    assert "1 more version matches; show them with --limit 100 or --all" in last.stderr
    assert run("list", "--limit", "100").stderr == ""


def test_a_limited_listing_reads_a_page_not_the_whole_catalog(many: Registry) -> None:
    # A limited name-ordered listing is exact however the limit falls within a name.
    for limit in (1, 19, 20, 21, 45):
        page = many.list(limit=limit)
        assert [v.ref for v in page] == [v.ref for v in many.list()][:limit]
        assert [v.ref for v in many.list(limit=limit, reverse=True)] == [
            v.ref for v in many.list(reverse=True)
        ][:limit]
    assert many.count() == 100 and many.count(name="team/a") == 20
    assert many.count(where=["accuracy>=0.5"]) == 0
    with traced(many.catalog.engine) as statements:
        many.list(limit=3)
    # The database applies the limit (in PEP 440 order), and only the page's versions are
    # loaded (3 ids named), not all 100 or a whole name's 20.
    first = next(s for s in statements if s.startswith("SELECT"))
    assert "ORDER BY" in first and "version_key" in first and "LIMIT" in first, first
    assert max(values_named(s) for s in statements) <= 3


def test_evals_get_one_column_per_metric_with_dataset_and_split(registry: Registry) -> None:
    insert(registry.catalog, "sql", manifest(1), version="1")
    registry.record_eval("sql@1", {"exact_match": 0.5}, dataset="spider", split="dev")
    registry.record_eval("sql@1", {"exact_match": 0.7}, dataset="spider", split="test")
    registry.record_eval("sql@1", {"exact_match": 0.6}, dataset="spider", split="test")
    header, _, row = run("list").stdout.splitlines()
    assert "exact_match@spider/dev" in header and "exact_match@spider/test" in header
    cells = row.split()
    assert cells[cells.index("0.5") + 1] == "0.6"  # the latest of each, in column order


def test_tables_fit_the_terminal_width_and_json_keeps_everything(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_name = "org/" + "very-long-adapter-name-" * 4
    insert(registry.catalog, long_name, manifest(1, base="x/" + "b" * 60), version="1")
    monkeypatch.setenv("COLUMNS", "80")
    result = run("list")
    assert result.exit_code == 0
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
    assert "…" in result.stdout
    assert json.loads(run("list", "--json").stdout)[0]["name"] == long_name
    monkeypatch.delenv("COLUMNS")
    assert long_name in run("list").stdout  # a pipe gets whole lines


def test_no_colour_for_pipes_or_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[1m" in table(("A",), [("x",)])
    assert "\x1b[31m" in style("error:", err=True, fg="red")
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in table(("A",), [("x",)])
    assert style("error:", err=True, fg="red") == "error:"
    monkeypatch.undo()
    assert "\x1b[" not in run("list").stdout


def test_show_collapses_the_config_unless_asked(registry: Registry) -> None:
    insert(registry.catalog, "sql", manifest(1), version="1")
    short = run("show", "sql@1")
    assert "config: 2 keys (shown with --config)" in short.stdout
    assert '"seed"' not in short.stdout
    full = run("show", "sql@1", "--config")
    assert '"seed": "1"' in full.stdout


def test_init_prints_json_when_asked(tmp_path: object) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path) + "/reg", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["path"].endswith("/reg")


def _leaf_commands() -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []

    def walk(command: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(command, info_name=path[-1], parent=parent)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name], ctx)
        else:
            found.append((" ".join(path[1:]), command))

    walk(main, ["adapters"], None)
    return found


def test_every_command_has_an_example_and_json_where_it_prints_data() -> None:
    leaves = _leaf_commands()
    assert {"tag", "describe", "base link", "init"} <= {name for name, _ in leaves}
    for name, command in leaves:
        assert "Example:" in (command.help or ""), f"adapters {name} --help has no example"
        if name not in ("demo", "server"):  # a narrated tour; a long-running server
            options = {opt for param in command.params for opt in param.opts}
            assert "--json" in options, f"adapters {name} has no --json"


def test_list_all_streams_pages_sized_by_the_first(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.cli.render import echo_json

    monkeypatch.setattr("registry.store.catalog.listing.PAGE_SIZE", 2)
    for index in range(5):
        insert(registry.catalog, "ab", manifest(index), version=f"1.{index}")
    insert(registry.catalog, "zz/a-much-longer-name", manifest(9), version="10.0.0")
    result = run("list", "--all")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "METHOD", "BASE", "ALIASES", "SIZE", "DIGEST"]
    assert sum(1 for line in lines if line.startswith("NAME")) == 1  # one header
    assert len(lines) == 2 + 6
    # The first page (ab@1.0, ab@1.1) set the widths: later cells are cut to them.
    assert lines[-1].startswith("zz/…  10.0.0  "), lines[-1]
    assert {line.index("lora") for line in lines[2:]} == {lines[2].index("lora")}
    # --json is one valid array, the very text the whole list printed at once gives.
    streamed = run("list", "--all", "--json")
    whole = CliRunner().invoke(
        click.command()(lambda: echo_json([v.to_dict() for v in registry.list()]))
    )
    assert streamed.stdout == whole.stdout
    assert [v["ref"] for v in json.loads(streamed.stdout)] == [v.ref for v in registry.list()]
    assert run("list", "--all", "--json", "--name", "nothing*").stdout == "[]\n"
    assert run("list", "--all", "--name", "nothing*").stderr.strip() == "no adapters match"
