"""A real Azure Blob Storage emulator for the tests: Azurite's blob service on 127.0.0.1.

``azurite-blob`` comes from npm at the version pinned in .ci/azurite/package-lock.json
(``bash .ci/install-azurite``); ``AZURITE_BLOB`` or ``PATH`` may name another copy. The
server binds only to 127.0.0.1 on a free port, keeps its data in a temp directory, sends
no telemetry, and knows one account whose key the tests check never leaks. Clients reach
it the way they reach a real account: ``AZURE_STORAGE_ACCOUNT_NAME``/``_KEY`` and an
``AZURE_STORAGE_ENDPOINT``. ``kill()`` stops it abruptly and a later ``start()`` brings
it back on the same port with the same data, for the fault tests.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from support.processes import ServerProcess

ACCOUNT = "adapterstest"
ACCOUNT_KEY = base64.b64encode(b"adapters-azurite-test-key-7d41c2e9").decode()
CONTAINER = "adapters-test"
AZURITE_ENV = "AZURITE_BLOB"
_BUNDLED = Path(__file__).resolve().parents[2] / ".ci/azurite/node_modules/.bin/azurite-blob"


def azurite_binary() -> str | None:
    """Where ``azurite-blob`` is: ``$AZURITE_BLOB``, .ci's pinned copy, or ``PATH``."""
    named = os.environ.get(AZURITE_ENV)
    if named:
        return named if Path(named).is_file() else None
    if _BUNDLED.is_file():
        return str(_BUNDLED)
    return shutil.which("azurite-blob")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AzuriteServer(ServerProcess):
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_name: str = "azurite.log"

    @property
    def endpoint(self) -> str:
        """The server's address; the account's blob endpoint is ``{endpoint}/{ACCOUNT}``."""
        return f"http://127.0.0.1:{self.port}"

    def through(self, proxy: str) -> dict[str, str]:
        """The variables that send a client through ``proxy`` (which forwards here)."""
        return {"AZURE_STORAGE_ENDPOINT": f"{proxy}/{ACCOUNT}"}

    @property
    def env(self) -> dict[str, str]:
        """The standard Azure variables a client of this account needs."""
        return {
            "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": ACCOUNT_KEY,
            "AZURE_STORAGE_ENDPOINT": f"{self.endpoint}/{ACCOUNT}",
        }

    def start(self, timeout: float = 60.0) -> AzuriteServer:
        binary = azurite_binary()
        if binary is None:
            raise RuntimeError("azurite-blob not found: bash .ci/install-azurite")
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        if not self.port:  # kept across restarts: clients keep their endpoint
            self.port = _free_port()
        args = [
            binary, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--location", str(data), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
        ]  # fmt: skip
        log = open(self.workdir / "azurite.log", "ab")  # noqa: SIM115 (kept open for the process)
        env = {**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{ACCOUNT_KEY}"}
        self.process = subprocess.Popen(
            args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"azurite exited: {self.log_tail()}")
            if self._container_ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"Azurite did not start within {timeout}s: {self.log_tail()}")

    def create_container(self, name: str) -> int:
        """Create a container (Shared Key signed REST call: obstore cannot); the status."""
        date = email.utils.formatdate(usegmt=True)
        headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
        signed = "".join(f"{key}:{value}\n" for key, value in sorted(headers.items()))
        # No body: urllib would add a Content-Type the signature does not cover.
        resource = f"/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        to_sign = "PUT\n" + "\n" * 11 + signed + resource
        digest = hmac.new(base64.b64decode(ACCOUNT_KEY), to_sign.encode(), hashlib.sha256)
        signature = base64.b64encode(digest.digest()).decode()
        request = urllib.request.Request(
            f"{self.endpoint}/{ACCOUNT}/{name}?restype=container",
            method="PUT",
            headers={
                **headers,
                "Content-Length": "0",
                "Authorization": f"SharedKey {ACCOUNT}:{signature}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code  # 409: it exists already

    def _container_ready(self) -> bool:
        try:
            return self.create_container(CONTAINER) in (201, 409)
        except OSError:
            return False


def start_azurite() -> AzuriteServer:
    return AzuriteServer(Path(tempfile.mkdtemp(prefix="adapters-azurite-"))).start()
