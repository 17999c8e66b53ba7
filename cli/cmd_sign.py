"""adapters sign, adapters key generate|trust|list."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from registry.cli.context import AppState, pass_state
from registry.cli.render import echo_json, table

if TYPE_CHECKING:
    from registry.security.keys import Keyring


@click.command()
@click.argument("ref")
@click.option(
    "--key",
    "key",
    required=True,
    metavar="NAME|PATH",
    help="A key made with `adapters key generate`, or a PEM private key file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the signature as JSON.")
@pass_state
def sign(state: AppState, ref: str, key: str, as_json: bool) -> None:
    """Sign a version's digest with an ed25519 key, after verifying it.

    The signature covers the name, version and digest, and the digest covers every
    file: changing any stored byte or the manifest breaks it. `adapters verify`
    reports each signature; policy.json can require a trusted one for an alias
    ("require_signature": true) and for loading ("load": {"require_signature": true}).

    \b
    Example:
      adapters key generate release
      adapters sign sql-lora@3 --key release
    """
    signature = state.registry().sign(ref, key)
    if as_json:
        echo_json(signature.to_dict())
        return
    if not signature.created:
        click.echo("note: this key had already signed this version", err=True)
    click.echo(f"{signature.ref} {signature.digest} signed by {signature.signer}")


@click.group()
def key() -> None:
    """Manage signing keys: make one, trust someone else's, list them.

    Keys live in the registry home: private keys in keys/private/ (mode 0600),
    trusted public keys in keys/trusted/. trust, untrust and list also work on a
    registry server (--registry http://..., an admin token); generate makes a key
    on this machine.

    \b
    Example:
      adapters key generate release
      adapters key trust alice alice.pub
      adapters key untrust alice
      adapters key list
    """


def _keyring(state: AppState) -> Keyring:
    from registry.security.keys import Keyring  # cryptography only for the commands that use keys

    registry = state.registry()
    return Keyring(registry.home.root, registry.catalog)


@key.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON.")
@pass_state
def generate(state: AppState, name: str, as_json: bool) -> None:
    """Make an ed25519 key pair NAME; its public half is trusted here at once.

    Give keys/trusted/NAME.pub to whoever should trust your signatures.

    \b
    Example:
      adapters key generate release
    """
    info = _keyring(state).generate(name)
    if as_json:
        echo_json(info.to_dict())
        return
    click.echo(f"made key {info.name} ({info.key_id[:16]}...)")
    click.echo(f"public key: {info.public_path}")


@key.command()
@click.argument("name")
@click.argument("public_key", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON.")
@pass_state
def trust(state: AppState, name: str, public_key: Path, as_json: bool) -> None:
    """Trust the ed25519 PUBLIC_KEY (PEM or OpenSSH) under NAME.

    Signatures made with it then pass `adapters verify` and policy gates. Recorded
    in the audit log (key-trust) with who did it.

    \b
    Example:
      adapters key trust alice alice.pub
      adapters --registry http://registry:8321 key trust alice alice.pub
    """
    info = state.registry().trust_key(name, public_key)
    if as_json:
        echo_json(info.to_dict())
        return
    click.echo(f"trusted key {info.name} ({info.key_id[:16]}...)")


@key.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def list_keys(state: AppState, as_json: bool) -> None:
    """List the keys in the trust store, whether each is trusted, and which can sign here.

    Only keys trusted with `adapters key generate` or `adapters key trust` (recorded in the
    audit log) count; a file copied into keys/trusted/ is listed as not trusted.

    \b
    Example:
      adapters key list --json
    """
    keys = state.registry().trusted_keys()
    if as_json:
        echo_json([info.to_dict() for info in keys])
        return
    if not keys:
        click.echo("no trusted keys; make one with `adapters key generate NAME`", err=True)
        return
    rows = [
        (k.name, k.key_id[:16], k.fingerprint, "yes" if k.recorded else "NO",
         "yes" if k.has_private else "no")
        for k in keys
    ]  # fmt: skip
    click.echo(table(("NAME", "KEY ID", "FINGERPRINT", "TRUSTED", "CAN SIGN HERE"), rows))
    for k in keys:
        if not k.recorded:
            click.echo(
                f"note: {k.public_path} was not trusted with `adapters key trust`; its "
                f"signatures do not count until `adapters key trust {k.name} {k.public_path}`",
                err=True,
            )


@key.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON.")
@pass_state
def untrust(state: AppState, name: str, as_json: bool) -> None:
    """Stop trusting the key NAME: its signatures no longer count.

    Recorded in the audit log (key-untrust) with who did it, and its public key file
    removed. A private key made here stays in keys/private/: delete it yourself if it
    should sign nothing more.

    \b
    Example:
      adapters key untrust alice
    """
    info = state.registry().untrust_key(name)
    if as_json:
        echo_json(info.to_dict())
        return
    click.echo(f"untrusted key {info.name} ({info.key_id[:16]}...)")


COMMANDS = [sign, key]
