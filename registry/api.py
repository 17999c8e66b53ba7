"""``Registry``: the facade that deployment code and the CLI call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from registry.blobs import BlobStore
from registry.catalog.store import Catalog, ListFilter
from registry.export import export_version
from registry.home import RegistryHome, find_home, init_home
from registry.progress import Progress
from registry.push import PushRequest, push
from registry.refs import Ref, parse_ref
from registry.results import AdapterVersion, ExportResult, PushResult, VerifyReport
from registry.verify import verify_version


class Registry:
    """An open registry: a catalog plus a blob store, found like git finds a repo.

    >>> reg = Registry.open()                       # doctest: +SKIP
    >>> reg.push("out/my-lora", evals={"accuracy": 0.93})  # doctest: +SKIP
    """

    def __init__(self, home: RegistryHome, catalog: Catalog) -> None:
        self.home = home
        self.catalog = catalog
        self.blobs = BlobStore(home.objects_dir)

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        database_url: str | None = None,
        create: bool = False,
    ) -> Registry:
        """Open the registry at ``path``, or the one found from the environment.

        ``create=True`` makes a new registry at ``path`` when there is none.
        ``database_url`` overrides ``ADAPTERS_DATABASE_URL``.
        """
        home = init_home(Path(path)) if path is not None and create else find_home(path)
        catalog = Catalog(database_url or home.database_url())
        return cls(home, catalog)

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- storing -----------------------------------------------------------------

    def push(
        self,
        directory: str | Path,
        *,
        name: str | None = None,
        version: str | None = None,
        base: str | None = None,
        data: Sequence[str | Path] = (),
        data_hashes: Sequence[str] = (),
        evals: Mapping[str, float] | None = None,
        eval_dataset: str = "",
        eval_split: str = "",
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        convert_pickle: bool = False,
        progress: Progress | None = None,
    ) -> PushResult:
        """Store an adapter directory as a new version (or find the identical one)."""
        request = PushRequest(
            directory=Path(directory),
            name=name,
            version=version,
            base=base,
            data=tuple(Path(p) for p in data),
            data_hashes=tuple(data_hashes),
            evals=dict(evals or {}),
            eval_dataset=eval_dataset,
            eval_split=eval_split,
            tags=dict(tags or {}),
            alias=alias,
            convert_pickle=convert_pickle,
        )
        return push(request, self.catalog, self.blobs, self.home.tmp_dir, progress)

    # -- finding -----------------------------------------------------------------

    def get(self, ref: str | Ref) -> AdapterVersion:
        """Resolve a reference (see ``registry.refs``) to one version."""
        return self.catalog.resolve(parse_ref(ref) if isinstance(ref, str) else ref)

    def list(
        self,
        *,
        name: str | None = None,
        base: str | None = None,
        method: str | None = None,
    ) -> list[AdapterVersion]:
        """Versions matching every given filter; ``name`` is a glob."""
        return self.catalog.list_versions(ListFilter(name_glob=name, base=base, method=method))

    # -- checking and getting back -------------------------------------------------

    def verify(self, ref: str | Ref) -> VerifyReport:
        """Re-hash every blob, recompute the digest and re-validate config and tensors."""
        return verify_version(self.get(ref), self.blobs)

    def export(
        self,
        ref: str | Ref,
        directory: str | Path,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> ExportResult:
        """Write the version's files (a PEFT directory for PEFT adapters) to ``directory``."""
        return export_version(
            self.get(ref), self.blobs, Path(directory), overwrite=overwrite, progress=progress
        )
