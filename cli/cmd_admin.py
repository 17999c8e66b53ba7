"""adapters migrate, doctor: upgrading a catalog and checking a registry.

Neither opens the registry the usual way: opening refuses a catalog at an older
schema, which is exactly what these commands deal with.
"""

from __future__ import annotations

from dataclasses import asdict

import click

from registry.cli.context import AppState, announce_home, pass_state
from registry.cli.render import echo_json
from registry.errors import ArgumentError
from registry.store.home import RegistryHome, find_home


def _home(state: AppState) -> RegistryHome:
    if state.is_remote():  # else ADAPTERS_URL would be passed over for the default home
        name = click.get_current_context().info_name
        raise ArgumentError(
            f"{name} works on a registry's own catalog and blobs, not through a server: run "
            "it on the server's machine with --registry PATH (and ADAPTERS_URL unset)"
        )
    home = find_home(state.registry_path)
    announce_home(home)
    return home


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def migrate(state: AppState, dry_run: bool, as_json: bool) -> None:
    """Upgrade the catalog (SQLite file or PostgreSQL) to this release's schema, in place.

    All steps run in one transaction: a failure leaves the catalog as it was. Back the
    catalog up first (docs/team.md#backups).

    \b
    Example:
      adapters migrate --dry-run
      adapters migrate
    """
    from registry.admin.migrate import migrate as run

    result = run(_home(state).database_url(), dry_run=dry_run)
    if as_json:
        echo_json({**asdict(result), "changed": result.changed})
        return
    found = "empty" if result.from_version is None else f"schema {result.from_version}"
    if not result.changed:
        click.echo(f"{result.database}: already at schema {result.to_version}; nothing to do")
        return
    verb = "would migrate" if dry_run else "migrated"
    click.echo(f"{result.database}: {verb} from {found} to schema {result.to_version}")
    for step in result.steps:
        click.echo(f"  {step}")


@click.command()
@click.option("--deep", is_flag=True, help="Also re-hash every referenced blob (reads them all).")
@click.option("--repair", is_flag=True, help="Delete catalog rows that belong to no version.")
@click.option(
    "--write-check", is_flag=True, help="Write, read back and delete a canary blob in the store."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def doctor(state: AppState, deep: bool, repair: bool, write_check: bool, as_json: bool) -> None:
    """Check the home, the catalog database and schema, the rows and the blobs.

    Each finding says what is wrong and the command that fixes it. Exit code 0 when
    there is nothing to fix (info findings need no action), 1 otherwise.

    \b
    Example:
      adapters doctor
      adapters doctor --deep --json
      adapters doctor --write-check
    """
    from registry.admin.doctor import diagnose
    from registry.admin.doctor import repair as run_repair
    from registry.store.actor import current_actor

    home = _home(state)
    url = home.database_url()
    if repair:
        fixed = run_repair(url, current_actor())
        for table, count in sorted(fixed.deleted.items()):
            click.echo(
                f"repaired: deleted {count} rows of {table} that belonged to no version", err=True
            )
    report = diagnose(home, url, deep=deep, write_check=write_check)
    if as_json:
        echo_json({**asdict(report), "clean": report.clean})
    else:
        click.echo(f"home      {report.home}")
        click.echo(f"database  {report.database} (schema {report.schema_version})")
        if report.blob_store:
            click.echo(f"blobs     {report.blob_store}")
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(report.counts.items()))
        if counts:
            click.echo(f"found     {counts}")
        click.echo(f"checked   {', '.join(report.checked)}{' (deep)' if deep else ''}")
        if not deep and "blobs_referenced" in report.counts:
            click.echo(
                f"hashed    a random sample of {report.counts.get('blobs_hashed', 0)} of "
                f"{report.counts['blobs_referenced']} referenced blobs (--deep: all)"
            )
        for finding in report.findings:
            click.echo(f"{finding.severity.upper():8}  [{finding.check}] {finding.what}")
            if finding.fix:
                click.echo(f"          fix: {finding.fix}")
        click.echo("no problems found" if report.clean else "problems found")
    if not report.clean:
        raise SystemExit(1)


COMMANDS = [migrate, doctor]
