"""adapters hub push | pull | status: sync with the Hugging Face Hub."""

from __future__ import annotations

import sys

import click

from registry.cli.context import AppState, pass_state
from registry.cli.progress import close_progress, progress_for_terminal
from registry.cli.render import echo_json, table


def _bars() -> bool:
    """The client's upload and download bars: on a terminal only."""
    return sys.stderr.isatty()


@click.group()
def hub() -> None:
    """Share adapters through the Hugging Face Hub.

    The endpoint and token come from HF_ENDPOINT and HF_TOKEN, or the token saved
    by `hf auth login`; the token is never stored or printed.

    \b
    Example:
      adapters hub push my-lora@3 acme/my-lora
      adapters hub pull acme/my-lora@v3
      adapters hub status my-lora@3
    """


@hub.command(name="push")
@click.argument("ref")
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo private (if it does not exist).")
@click.option("--branch", help="Branch to commit to (default: main; created if missing).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def push(
    state: AppState, ref: str, repo_id: str, private: bool, branch: str | None, as_json: bool
) -> None:
    """Push version REF to the Hub repo REPO_ID in one commit, tagged v<VERSION>.

    The commit holds the PEFT files, a model card (README.md) and
    registry-manifest.json. It is made against the branch head read first, so a
    concurrent push makes it fail instead of overwriting. Pushing unchanged
    content makes no commit. The repo, commit and tag are recorded on the version.

    \b
    Example:
      adapters hub push my-lora@3 acme/my-lora --private
      adapters hub push my-lora@prod acme/my-lora --branch staging
    """
    result = state.registry().hub.push(
        ref,
        repo_id,
        private=private,
        branch=branch,
        progress=progress_for_terminal("uploading"),
        progress_bars=_bars(),
    )
    if as_json:
        echo_json(result.to_dict())
        return
    if not result.committed:
        click.echo(f"note: {result.repo_id}@{result.branch} already holds these files", err=True)
    if result.tag_moved:
        click.echo(f"note: moved tag {result.tag} to the new commit", err=True)
    click.echo(f"{result.ref} -> {result.repo_id}@{result.tag} (commit {result.commit[:12]})")


@hub.command(name="pull")
@click.argument("target", metavar="REPO_ID[@REV]")
@click.option("--name", help="Store under this name (default: the recorded name, or REPO_ID).")
@click.option("--base", help="Base model NAME[@REVISION] when a plain repo names none.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def pull(state: AppState, target: str, name: str | None, base: str | None, as_json: bool) -> None:
    """Import a Hub repo at REV (branch, tag or commit; default main) as a version.

    REV is resolved to a commit once. Only the adapter files are downloaded;
    each is checked against the Hub's sha256 and, when the repo has a
    registry-manifest.json, against its digest, before anything is stored.
    A plain PEFT repo imports too (metadata from adapter_config.json and the card).
    With HF_HUB_OFFLINE=1 a pull pinned to a commit works from the local cache.

    \b
    Example:
      adapters hub pull acme/my-lora@v3
      adapters hub pull someone/their-lora --name their-lora --base meta-llama/Llama-3.1-8B
    """
    # One bar of ours for every step; the client's own bars would stack up beside it.
    progress = progress_for_terminal(single=True)
    result = state.registry().hub.pull(
        target, name=name, base=base, progress=progress, progress_bars=False
    )
    close_progress(progress)
    if as_json:
        echo_json(result.to_dict())
        return
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for key, reason in result.tags_left_out:
        shown = repr(key[:60]) + ("..." if len(key) > 60 else "")
        click.echo(f"note: tag {shown} was left out: {reason}", err=True)
    if not result.push.created:
        click.echo("note: identical content is already stored; nothing was written", err=True)
    click.echo(
        f"{result.repo_id}@{result.revision} (commit {result.commit[:12]}) -> "
        f"{result.ref} {result.digest}"
    )


@hub.command(name="status")
@click.argument("ref")
@click.option("--repo", "repo_id", help="Compare with this repo (default: those synced before).")
@click.option("--branch", help="Branch of --repo to compare with (default: main).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@pass_state
def status(
    state: AppState, ref: str, repo_id: str | None, branch: str | None, as_json: bool
) -> None:
    """Compare version REF with the Hub, by digest: in-sync, local-ahead,
    remote-changed or missing, per repo branch.

    Exits 0 when every repo is in sync, 1 otherwise.

    \b
    Example:
      adapters hub status my-lora@3
      adapters hub status my-lora --repo acme/my-lora --branch staging
    """
    report = state.registry().hub.status(ref, repo_id=repo_id, branch=branch)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(f"{report.ref}  {report.digest}")
        rows = [
            (r.repo_id or None, r.branch, r.state, (r.remote_commit or "")[:12] or None, r.detail)
            for r in report.repos
        ]
        click.echo(table(("REPO", "BRANCH", "STATE", "COMMIT", "DETAIL"), rows))
    if not report.in_sync:
        raise SystemExit(1)


COMMANDS = [hub]
