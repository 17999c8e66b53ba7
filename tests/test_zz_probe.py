import json
from pathlib import Path

import httpx2
from support.handmade import write_adapter
from support.server import ServedRegistry, stage_uploads

API = "/api/v1"


def test_probe(served: ServedRegistry, tmp_path: Path) -> None:
    h = {"Authorization": f"Bearer {served.tokens['admin']}"}
    http = httpx2.Client(base_url=served.url, headers=h)
    files = stage_uploads(http, write_adapter(tmp_path / "p", seed=1))
    cases = [
        {"name": "p1", "base": "x" * 300}, {"name": "p2", "base": "x@" + "r" * 300},
        {"name": "p3", "base": "x\u0000y"},
        {"name": "p4", "files": {**files, "d/" + "a" * 600 + ".txt": files["adapter_config.json"]}},
    ]
    bad = []
    for extra in cases:
        body = {"files": files, **extra}
        try:
            r = http.post(f"{API}/push", json=body)
        except Exception as exc:
            print("EXC", exc, served.server.access_log()[-3000:])
            raise
        print(str(extra)[:80], r.status_code, r.text[:250])
        if r.status_code >= 500 or r.status_code < 400:
            bad.append((str(extra)[:80], r.status_code, r.text[:200]))
    for key, value in (("base_model_name_or_path", "m" * 300), ("revision", "r" * 300)):
        d = write_adapter(tmp_path / key, seed=2)
        cfg = json.loads((d / "adapter_config.json").read_text())
        cfg[key] = value
        (d / "adapter_config.json").write_text(json.dumps(cfg))
        f2 = stage_uploads(http, d)
        r = http.post(f"{API}/push", json={"files": f2, "name": "q" + key[:4]})
        print(key, r.status_code, r.text[:250])
        if r.status_code >= 500 or r.status_code < 400:
            bad.append((key, r.status_code, r.text[:200]))
    assert not bad, bad
