"""Everything a test server has stored, on each server backend, for "nothing written" checks.

A refused request must leave every table of the catalog (SQLite or PostgreSQL) row for
row as it was, no file staged or half-staged under ``tmp/uploads``, and no blob: no file
in a local blob store, no object under the store's prefix in the S3 bucket (the
``incoming/`` keys of direct uploads included) and no multipart upload left open there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from registry.store.object_url import parse_object_url
from support.server import ServedRegistry


@dataclass(frozen=True)
class StoredState:
    catalog: dict[str, list[str]]  # every row of every table, as text, sorted
    staged: list[str]  # files under tmp/uploads, partial ones included
    blobs: list[str]  # files of a local blob store, or keys under the bucket prefix
    multipart: list[str]  # keys of multipart uploads open under the prefix (S3)

    @property
    def versions(self) -> list[str]:
        return self.catalog.get("adapter_versions", [])


def stored_state(served: ServedRegistry) -> StoredState:
    staged_dir = served.home / "tmp" / "uploads"
    staged = sorted(p.name for p in staged_dir.iterdir()) if staged_dir.is_dir() else []
    if served.blob_url is None:
        blobs = _files(served.home / "objects")
        multipart: list[str] = []
    else:
        blobs, multipart = _bucket(served.blob_url)
    return StoredState(_catalog_rows(served.database_url), staged, blobs, multipart)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _catalog_rows(database_url: str) -> dict[str, list[str]]:
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(database_url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
                for name, table in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()


def _bucket(blob_url: str) -> tuple[list[str], list[str]]:
    """Object keys and open multipart uploads under the store's prefix, as the S3 server
    itself lists them (credentials and endpoint from the environment the test set)."""
    import boto3

    _scheme, bucket, prefix = parse_object_url(blob_url)
    client = boto3.client(
        "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1"
    )
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    return sorted(keys), sorted(upload["Key"] for upload in uploads)
