"""Rendering results for people (tables) and programs (JSON).

Colour only on a terminal and never with ``NO_COLOR`` set; tables fit the terminal
(or ``COLUMNS``) by cutting their widest columns, and ``--json`` keeps everything.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

MIN_COLUMN = 6
ELLIPSIS = "…"


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def echo_json_array(items: Iterable[Any]) -> None:
    """The text ``echo_json(list(items))`` prints, written item by item as they come."""
    opened = False
    for item in items:
        text = json.dumps(item, indent=2, sort_keys=True, default=str)
        # Nested as json.dumps nests it: every line of an item two spaces in.
        click.echo(("," if opened else "[") + "\n  " + text.replace("\n", "\n  "), nl=False)
        opened = True
    click.echo("\n]" if opened else "[]")


def colour_enabled(err: bool = False) -> bool:
    stream = sys.stderr if err else sys.stdout
    return "NO_COLOR" not in os.environ and stream.isatty() and os.environ.get("TERM") != "dumb"


def style(text: str, err: bool = False, **styles: Any) -> str:
    """``text`` styled for a colour terminal, plain otherwise."""
    return click.style(text, **styles) if colour_enabled(err) else text


def output_width() -> int | None:
    """The width tables must fit: the terminal's, or ``COLUMNS``; None (no limit) when
    the output goes to a pipe or file and ``COLUMNS`` is unset."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    width: int | None = None,
    row_style: Callable[[int], dict[str, Any]] | None = None,
    widths: Sequence[int] | None = None,
) -> str:
    """Aligned columns under a header rule; with ``width``, the widest columns are cut
    (ending in an ellipsis) until a line fits. ``row_style(i)`` gives click style
    keywords for row i, used on a colour terminal. With ``widths`` (from
    ``column_widths`` of an earlier part), only the rows, cut to those widths: the
    next part of a table printed as it streams."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    header = widths is None
    if widths is None:
        widths = _widths(cells, width)
    else:
        cells = cells[1:]
    colour = colour_enabled()
    lines = []
    for index, row in enumerate(cells):
        line = "  ".join(_clip(value, widths[i]).ljust(widths[i]) for i, value in enumerate(row))
        line = line.rstrip()
        if colour and header and index == 0:
            line = click.style(line, bold=True)
        elif colour and row_style is not None:
            line = click.style(line, **row_style(index - 1 if header else index))
        lines.append(line)
        if header and index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def column_widths(
    headers: Sequence[str], rows: Sequence[Sequence[object]], width: int | None = None
) -> list[int]:
    """The widths ``table`` gives these columns."""
    return _widths([[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows], width)


def _widths(cells: Sequence[Sequence[str]], width: int | None) -> list[int]:
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return _fit(widths, width) if width is not None else widths


def _fit(widths: list[int], total: int) -> list[int]:
    widths = list(widths)
    budget = total - 2 * (len(widths) - 1)
    while sum(widths) > budget:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= MIN_COLUMN:
            break  # as narrow as stays readable; the terminal wraps the rest
        widths[widest] -= 1
    return widths


def _clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[: max(width - 1, 0)] + ELLIPSIS


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def plural(count: int, word: str, words: str | None = None) -> str:
    """'1 alias', '2 aliases': never 'alias(es)'."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def human_size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
