"""New versions made by operators (combine, resize, extract) and a version merged into
base weights: the ``Registry`` methods for them; the tensor work runs on this machine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.progress import Progress
from registry.store.refs import Ref

if TYPE_CHECKING:
    from registry.ops.methods import CombineSpec
    from registry.runtime.derive import DeriveResult
    from registry.runtime.merge_into_base import MergeResult
from registry.facade.core import FacadeCore


class OperatorMethods(FacadeCore):
    """New versions made by operators (combine, resize, extract) and merging a version into
    base weights; the tensor work runs here, on verified blobs."""

    def combine(
        self,
        refs: Sequence[str | Ref],
        spec: CombineSpec | None = None,
        *,
        name: str,
        allow_different_bases: bool = False,
        version: str | None = None,
        alias: str | None = None,
        tags: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        allow_lineage_outside_namespace: bool = False,
        **parameters: Any,
    ) -> DeriveResult:
        """Combine versions into a new one, recorded with its lineage; see ``registry.ops``.

        ``spec`` is a ``registry.ops.methods.CombineSpec``; or give its fields as keywords:
        ``method`` ``cat`` (exact), ``svd`` (exact sum truncated to ``rank``), or ``linear``,
        ``ties``, ``dare_linear``, ``dare_ties``, ``magnitude_prune`` (dense per module, then
        rank ``rank``), ``weights`` (default 1 each), ``rank``, ``density``, ``seed``,
        ``majority_sign``. IA3 adapters combine with ``linear``.

        ``allow_lineage_outside_namespace``: on a registry server, store a version named
        ``NS/...`` from parents outside ``NS/`` (refused otherwise: its manifest shows those
        parents' names and digests to ``NS/``'s tokens). A local registry has no namespaces.
        """
        from registry.ops.methods import CombineSpec
        from registry.runtime.derive import Destination, combine_versions

        spec = CombineSpec.for_call(spec, len(refs), parameters)
        return combine_versions(
            self.store,
            [str(r) for r in refs],
            spec,
            Destination(
                name, version, alias, dict(tags or {}), allow_lineage_outside_namespace
            ),
            allow_different_bases=allow_different_bases,
            progress=progress,
        )

    def merge_into_base(
        self,
        ref: str | Ref,
        base: str | Path,
        out: str | Path,
        *,
        force: bool = False,
        max_shard_bytes: int | None = None,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> MergeResult:
        """Write the base checkpoint in ``base`` with the version folded in to ``out``,
        streaming tensor by tensor; refuses a base that does not fit unless ``force``."""
        from registry.runtime.merge_into_base import merge_version

        return merge_version(
            self.store,
            str(ref),
            Path(base),
            Path(out),
            force=force,
            max_shard_bytes=max_shard_bytes,
            overwrite=overwrite,
            progress=progress,
        )

    def resize(
        self,
        ref: str | Ref,
        rank: int,
        *,
        name: str,
        version: str | None = None,
        alias: str | None = None,
        tags: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        allow_lineage_outside_namespace: bool = False,
    ) -> DeriveResult:
        """A new version holding the best rank-``rank`` approximation of ``ref``
        (``allow_lineage_outside_namespace`` as for ``combine``)."""
        from registry.runtime.derive import Destination, resize_version

        return resize_version(
            self.store,
            str(ref),
            rank,
            Destination(
                name, version, alias, dict(tags or {}), allow_lineage_outside_namespace
            ),
            progress=progress,
        )

    def extract(
        self,
        base: str | Path,
        tuned: str | Path,
        rank: int,
        *,
        name: str,
        targets: Sequence[str] = (),
        include_embeddings: bool = False,
        base_name: str | None = None,
        seed: int = 0,
        version: str | None = None,
        alias: str | None = None,
        tags: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> DeriveResult:
        """A LoRA of rank ``rank`` approximating ``tuned - base`` (two model directories)."""
        from registry.runtime.derive import Destination, extract_version

        return extract_version(
            self.store,
            Path(base),
            Path(tuned),
            rank,
            Destination(name, version, alias, dict(tags or {})),
            targets=targets,
            include_embeddings=include_embeddings,
            base_name=base_name,
            seed=seed,
            progress=progress,
        )
