"""Which server backends each server test runs on: the one place that decides it.

A server test takes the ``served`` fixture (a server shared by its module) or
``server_backend`` (what a test needs to start a server of its own); conftest's
``pytest_generate_tests`` parametrises both with :func:`backend_params`. Every test runs
on ``sqlite+local``; the core tests below also run on the other three combinations by
default, and every other test does so only as ``slow`` (``-m "not slow"`` leaves them
out). This is separate from the blob-backend parametrisation of the library tests
(``blob_backend`` in conftest), which other blob stores extend.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

# catalog + blob store of the server: every combination the server supports in tests
SERVER_BACKENDS = ("sqlite+local", "postgres+local", "sqlite+s3", "postgres+s3")
DEFAULT_BACKEND = "sqlite+local"

# The tests (module::function) that run on every combination by default: one path
# through each kind of request a client makes (push streamed and pre-signed, reads,
# annotations, gates, operators on the client, records, the CLI, a kill mid-push).
CORE_TESTS = frozenset(
    {
        "test_server.py::test_the_python_client_reads_and_annotates_through_the_server",
        "test_server.py::test_the_cli_works_against_the_server",
        "test_remote_parity.py::test_push_get_and_identical_content",
        "test_remote_parity.py::test_aliases_gates_and_removal",
        "test_remote_parity.py::test_evals_log_lineage_compare",
        "test_remote_parity.py::test_export_is_the_same",
        "test_remote_operators.py::test_combine_and_resize_match_a_local_run",
        "test_remote_records.py::test_tags_descriptions_and_base_records",
        "test_server_matrix.py::test_a_large_push_goes_the_way_the_blob_store_allows",
        "test_server_matrix.py::test_the_server_re_hashes_what_it_stores",
        "test_server_matrix.py::test_gc_beside_pushes_loses_nothing",
        "test_server_load.py::test_a_server_killed_mid_push_leaves_no_version_and_the_retry_completes",
    }
)


@dataclass(frozen=True)
class ServerBackend:
    """One combination: the server's catalog and its blob store."""

    name: str

    @property
    def catalog(self) -> str:
        return self.name.split("+")[0]

    @property
    def blobs(self) -> str:
        return self.name.split("+")[1]


def backend_params(nodeid: str) -> list[object]:
    """The parameters of ``served`` / ``server_backend`` for the test ``nodeid``."""
    test = nodeid.split("/")[-1].split("[")[0]
    core = test in CORE_TESTS
    return [
        pytest.param(
            ServerBackend(name),
            id=name,
            marks=() if core or name == DEFAULT_BACKEND else (pytest.mark.slow,),
        )
        for name in SERVER_BACKENDS
    ]
