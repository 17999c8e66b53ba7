"""An object store URL (``s3://BUCKET/PREFIX``, ``gs://...``, ``az://CONTAINER/...``) taken
apart and checked against each cloud's naming rules before any request: a bad name would
otherwise come back as an opaque 400 (Azure: "resource name length is not within the
permissible limits") that reads like an outage."""

from __future__ import annotations

import re

from registry.errors import ArgumentError

# scheme -> (pattern, what the cloud calls it, what to use instead). S3 only by its characters:
# legacy buckets (us-east-1) and S3-compatible servers allow names outside today's rules,
# but none allows other characters, which a server would answer with a 403 or 400 that
# reads like a wrong credential.
_NAMES = {
    "s3": (
        re.compile(r"[A-Za-z0-9._-]+"),
        "bucket",
        "use only letters, digits, dots, hyphens and underscores",
    ),
    "gs": (
        re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]"),
        "bucket",
        "use at least 3 lowercase letters and digits, with dots, hyphens and underscores inside",
    ),
    "az": (
        re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"),
        "container",
        "use at least 3 lowercase letters and digits, with single hyphens inside",
    ),
}


def parse_object_url(url: str) -> tuple[str, str, str]:
    """``s3://bucket/some/prefix`` -> ("s3", "bucket", "some/prefix"); the scheme in any case."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    bucket, _, prefix = rest.partition("/")
    if not bucket or "@" in rest or "?" in rest or "#" in rest:
        raise ArgumentError(
            f"the blob store URL must be {scheme}://BUCKET/PREFIX with "
            "no credentials or options in it; credentials come from the environment"
        )
    rule = _NAMES.get(scheme)
    if rule is not None and not rule[0].fullmatch(bucket):
        _pattern, kind, advice = rule
        raise ArgumentError(
            f"{bucket!r} is not a valid {kind} name for {scheme}://: {advice}; "
            "fix ADAPTERS_BLOB_URL"
        )
    prefix = prefix.strip("/")
    bad = _bad_segment(prefix)
    if bad is not None:
        # The stores' path rules refuse these only at the first request, as an error
        # that reads like an outage; "a/../b" would also name another prefix's blobs.
        raise ArgumentError(
            f"the prefix {prefix!r} of {scheme}://{bucket}/ has {bad}; write it as "
            f"{scheme}://{bucket}/SEGMENT/SEGMENT in ADAPTERS_BLOB_URL (or blob_url)"
        )
    return scheme, bucket, prefix


def _bad_segment(prefix: str) -> str | None:
    if not prefix:
        return None
    for segment in prefix.split("/"):
        if segment == "":
            return "an empty segment (a double slash)"
        if segment in (".", ".."):
            return f"a {segment!r} segment"
        if any(ord(char) < 32 or ord(char) == 127 for char in segment):
            return "a control character"
    return None
