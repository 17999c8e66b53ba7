"""An object store URL (``s3://BUCKET/PREFIX``, ``gs://...``, ``az://CONTAINER/...``) taken
apart and checked against each cloud's naming rules before any request: a bad name would
otherwise come back as an opaque 400 (Azure: "resource name length is not within the
permissible limits") that reads like an outage."""

from __future__ import annotations

import re

from registry.errors import ArgumentError

# scheme -> (pattern, what the cloud calls it, what it allows). Not S3: legacy buckets
# (us-east-1) and S3-compatible servers allow names outside today's rules.
_NAMES = {
    "gs": (
        re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]"),
        "bucket",
        "dots, hyphens and underscores",
    ),
    "az": (
        re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"),
        "container",
        "single hyphens",
    ),
}


def parse_object_url(url: str) -> tuple[str, str, str]:
    """``s3://bucket/some/prefix`` -> ("s3", "bucket", "some/prefix")."""
    scheme, _, rest = url.partition("://")
    bucket, _, prefix = rest.partition("/")
    if not bucket or "@" in rest or "?" in rest or "#" in rest:
        raise ArgumentError(
            f"the blob store URL must be {scheme}://BUCKET/PREFIX with "
            "no credentials or options in it; credentials come from the environment"
        )
    rule = _NAMES.get(scheme)
    if rule is not None and not rule[0].fullmatch(bucket):
        _pattern, kind, allowed = rule
        raise ArgumentError(
            f"{bucket!r} is not a valid {kind} name for {scheme}://: use at least 3 lowercase "
            f"letters and digits, with {allowed} inside; fix ADAPTERS_BLOB_URL"
        )
    return scheme, bucket, prefix.strip("/")
