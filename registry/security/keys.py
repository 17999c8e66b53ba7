"""The signing keyring of a registry home: ed25519 keys for ``adapters sign``.

    <home>/keys/private/NAME.pem   private keys made here (PKCS#8 PEM, mode 0600, dir 0700)
    <home>/keys/trusted/NAME.pub   public keys whose signatures count (SubjectPublicKeyInfo PEM)

A key is identified by its *key id*: the hex sha256 of its 32 raw public-key bytes. Making a
key trusts its public half, and ``adapters key trust NAME FILE.pub`` adds someone else's;
both record the trust in the catalog's audit log (``trust_records``), and only recorded keys
count: a ``.pub`` file copied into ``keys/trusted/`` is listed as unrecorded, not trusted.
As ssh does, key files and directories others could change are refused with the ``chmod``
that fixes them: the trust store and its files must not be group- or world-writable, private
keys not readable by others. Names are plain identifiers, never paths, and key bytes never
appear in a message: errors name the file instead.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.errors import ConflictError, InvalidNameError, NotFoundError, SignatureError
from registry.security.trust_records import record_trust, record_untrust, recorded_trust
from registry.store.actor import current_actor
from registry.store.catalog.catalog import Catalog

KEYS_DIR = "keys"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_MAX_KEY_FILE = 64 * 1024


def is_key_name(text: str) -> bool:
    """Whether ``text`` is a key's name (as opposed to a path to a key file)."""
    return bool(_NAME.fullmatch(text)) and ".." not in text


def validate_key_name(name: str) -> str:
    if not is_key_name(name):
        raise InvalidNameError(
            f"invalid key name {name!r}: use lowercase letters, digits, '.', '_' and '-' "
            "(at most 64 characters, starting with a letter or digit)"
        )
    return name


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def ssh_fingerprint(public: Ed25519PublicKey) -> str:
    """The fingerprint ``ssh-keygen -l`` shows: SHA256 of the OpenSSH key blob, base64."""
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class KeyInfo:
    """A trusted public key (and whether its private half lives in this home)."""

    name: str
    key_id: str
    public_path: Path
    has_private: bool
    recorded: bool = True  # False: a file in keys/trusted/ no `key trust` recorded (ignored)
    fingerprint: str = ""  # as ``ssh-keygen -l`` shows it

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key_id": self.key_id,
            "fingerprint": self.fingerprint,
            "public_key": str(self.public_path),
            "private_key_here": self.has_private,
            "trusted": self.recorded,
        }


class Keyring:
    """The keys of one registry home, trusted as its catalog records."""

    def __init__(self, home_root: Path, catalog: Catalog) -> None:
        self.catalog = catalog
        self.root = home_root / KEYS_DIR
        self.private_dir = self.root / "private"
        self.trusted_dir = self.root / "trusted"

    def private_path(self, name: str) -> Path:
        return self.private_dir / f"{validate_key_name(name)}.pem"

    def public_path(self, name: str) -> Path:
        return self.trusted_dir / f"{validate_key_name(name)}.pub"

    # -- making and trusting keys -------------------------------------------------------

    def generate(self, name: str) -> KeyInfo:
        """Make a new key pair called ``name``; its public half is trusted at once."""
        private_path, public_path = self.private_path(name), self.public_path(name)
        taken = next((p for p in (private_path, public_path) if p.exists()), None)
        if taken is not None:
            raise ConflictError(f"a key named {name!r} already exists ({taken}); choose another")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_atomic(private_path, pem, mode=0o600)
        _write_atomic(public_path, public_pem(key.public_key()), mode=0o644)
        new_id = key_id(key.public_key())
        record_trust(self.catalog, current_actor(), name, new_id)
        return KeyInfo(name, new_id, public_path, has_private=True,
                       fingerprint=ssh_fingerprint(key.public_key()))  # fmt: skip

    def trust(self, name: str, public_file: Path) -> KeyInfo:
        """Trust the ed25519 public key in ``public_file`` (PEM or OpenSSH) under ``name``."""
        return self.trust_bytes(name, read_key_file(public_file), str(public_file))

    def trust_bytes(self, name: str, data: bytes, source: str) -> KeyInfo:
        """Trust the ed25519 public key ``data`` (PEM or OpenSSH, read from ``source``,
        which errors name) under ``name``."""
        validate_key_name(name)
        if len(data) > _MAX_KEY_FILE:
            raise SignatureError(f"{source} is too large to be a key file")
        public = parse_public_key(data, source)
        new_id = key_id(public)
        print_ = ssh_fingerprint(public)
        for info in self.candidates():
            if info.key_id == new_id:
                if info.name != name:
                    raise ConflictError(f"{source} is already trusted as {info.name!r}")
                if not info.recorded:  # a file placed by hand: trusting it is this command's job
                    record_trust(self.catalog, current_actor(), name, new_id)
                return KeyInfo(name, new_id, info.public_path, info.has_private,
                               fingerprint=print_)  # fmt: skip
        path = self.public_path(name)
        if path.exists():
            raise ConflictError(
                f"another key is already trusted as {name!r}; choose another name or remove {path}"
            )
        _write_atomic(path, public_pem(public), mode=0o644)
        record_trust(self.catalog, current_actor(), name, new_id)
        return KeyInfo(name, new_id, path, self.private_path(name).exists(), fingerprint=print_)

    def untrust(self, name: str) -> KeyInfo:
        """Stop trusting the key called ``name``: the untrust is recorded in the audit log,
        then its public key file removed. A private key made here stays in keys/private/."""
        found = next((info for info in self.candidates() if info.name == name), None)
        if found is None:
            raise NotFoundError(f"no key named {validate_key_name(name)!r} in {self.trusted_dir}; "
                                "see `adapters key list`")  # fmt: skip
        # Recorded first: a crash before the file goes leaves an unrecorded file, not trusted.
        record_untrust(self.catalog, current_actor(), name, found.key_id)
        found.public_path.unlink(missing_ok=True)
        return KeyInfo(found.name, found.key_id, found.public_path, found.has_private,
                       recorded=False, fingerprint=found.fingerprint)  # fmt: skip

    # -- reading keys -------------------------------------------------------------------

    def trusted(self) -> list[KeyInfo]:
        """Every trusted key, by name: the key files whose trust the catalog records."""
        return [info for info in self.candidates() if info.recorded]

    def candidates(self) -> list[KeyInfo]:
        """Every key file in the trust store, recorded as trusted or not. An unreadable key
        file, or one (or its directory) others could change, is an error, not skipped."""
        if not self.trusted_dir.is_dir():
            return []
        for directory in (self.root, self.trusted_dir):
            refuse_unsafe(directory, 0o022)
        recorded = recorded_trust(self.catalog)
        found = []
        for path in sorted(self.trusted_dir.glob("*.pub")):
            name = path.name[: -len(".pub")]
            if not _NAME.fullmatch(name):
                continue
            refuse_unsafe(path, 0o022)
            public = load_public_key(path)
            ident = key_id(public)
            found.append(
                KeyInfo(
                    name,
                    ident,
                    path,
                    self.private_path(name).exists(),
                    recorded=recorded.get(ident) == name,
                    fingerprint=ssh_fingerprint(public),
                )
            )
        return found

    def trusted_by_id(self) -> dict[str, KeyInfo]:
        return {info.key_id: info for info in self.trusted()}

    def private_key(self, name_or_path: str) -> tuple[str, Ed25519PrivateKey]:
        """(signer name, key) for ``--key NAME`` (a key made here) or ``--key PATH``."""
        if "/" in name_or_path or name_or_path.endswith(".pem"):
            path = Path(name_or_path).expanduser()
            signer = path.name.removesuffix(".pem").lower()
            if not _NAME.fullmatch(signer):
                signer = "key"
        else:
            path = self.private_path(name_or_path)
            signer = name_or_path
            if self.private_dir.is_dir():
                refuse_unsafe(self.private_dir, 0o077, fix="700")
            if not path.is_file():
                raise NotFoundError(
                    f"no private key named {name_or_path!r} in {self.private_dir}; "
                    "make one with `adapters key generate NAME` or pass --key PATH"
                )
        return signer, load_private_key(path)


def refuse_unsafe(path: Path, forbidden: int, fix: str = "go-w") -> None:
    """Refuse a key file or directory whose mode has any ``forbidden`` bit, as ssh does."""
    if os.name != "posix":
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc.strerror or exc}") from None
    if mode & forbidden:
        who = "other users" if mode & forbidden & 0o007 else "its group"
        raise SignatureError(
            f"{path} has unsafe permissions (mode {mode:04o}, open to {who}): whoever can "
            f"change it can change which signatures count; run `chmod {fix} {path}`"
        )


def load_public_key(path: Path) -> Ed25519PublicKey:
    return parse_public_key(read_key_file(path), str(path))


def parse_public_key(data: bytes, path: str) -> Ed25519PublicKey:
    """An ed25519 public key from PEM or OpenSSH bytes; errors name ``path``, never the
    bytes."""
    try:
        if data.startswith(b"ssh-ed25519 "):
            key: Any = serialization.load_ssh_public_key(data)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(f"{path} is not a PEM or OpenSSH public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path} holds a {type(key).__name__}; signing keys are ed25519")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise NotFoundError(f"cannot read the private key {path}: {exc.strerror or exc}") from None
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        # As ssh does: a key others can read is not a secret any more.
        raise SignatureError(
            f"the private key {path} can be read by other users (mode "
            f"{stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )
    data = read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SignatureError(
            f"{path} is encrypted with a passphrase; signing needs an unencrypted key file"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # The parser's message is dropped on purpose: it might quote the file.
        raise SignatureError(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path} holds a {type(key).__name__}; signing keys are ed25519")
    return key


def read_key_file(path: Path) -> bytes:
    """A key file's bytes, refused when larger than any key file."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise NotFoundError(f"cannot read the key file {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE:
        raise SignatureError(f"{path} is too large to be a key file")
    return data


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    # The directory of private keys is created private; each file is created with its final
    # mode, so a key is never readable by others, not even for a moment.
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.name == "private":
        os.chmod(path.parent, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if the name was taken meanwhile; never overwrites
    except FileExistsError:
        raise ConflictError(f"{path} already exists") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
