"""Tags and a description, changed after the push; each change is an audit event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from registry.errors import ArgumentError, InvalidNameError, combined_error
from registry.lifecycle import transactions as q
from registry.lifecycle.results import DescriptionChange, TagChange
from registry.lifecycle.selection import as_ref, row_id
from registry.store.actor import current_actor
from registry.store.catalog.catalog import Catalog
from registry.store.refs import Ref
from registry.store.tag_rules import tag_problems

DESCRIPTION_MAX = 4000


RegistryProblem = InvalidNameError | ArgumentError


def _tag_problems(tags: Mapping[str, str], remove: Sequence[str]) -> list[RegistryProblem]:
    problems: list[RegistryProblem] = [*tag_problems(tags, remove)]
    both = sorted(set(tags) & set(remove))
    if both:
        problems.append(ArgumentError(f"tag {', '.join(both)} is both set and removed; pick one"))
    return problems


def set_tags(
    catalog: Catalog,
    ref: str | Ref,
    tags: Mapping[str, str] | None = None,
    *,
    remove: Sequence[str] = (),
) -> TagChange:
    """Set ``tags`` (adding or replacing values) and remove the keys in ``remove``, in one
    transaction with its audit event; every problem is reported before anything changes."""
    tags = {str(k).strip(): str(v).strip() for k, v in (tags or {}).items()}
    remove = sorted({str(k).strip() for k in remove})
    if not tags and not remove:
        raise ArgumentError("no tags given; pass KEY=VALUE to set or --rm KEY to remove")
    problems = _tag_problems(tags, remove)
    if problems:
        raise combined_error(problems)
    version = catalog.resolve(as_ref(ref))
    before, after = q.change_tags(
        catalog.engine, row_id(catalog, version), tags, remove, current_actor()
    )
    return TagChange(ref=version.ref, digest=version.digest, tags=after, previous=before)


def describe(catalog: Catalog, ref: str | Ref, text: str) -> DescriptionChange:
    """Set the version's description ("" clears it), audited."""
    text = text.strip()
    if len(text) > DESCRIPTION_MAX:
        raise ArgumentError(
            f"the description is {len(text)} characters long; at most {DESCRIPTION_MAX}"
        )
    if any(not (c.isprintable() or c in "\n\t") for c in text):
        raise ArgumentError("the description may not contain control characters")
    version = catalog.resolve(as_ref(ref))
    new = text or None
    previous = q.set_description(catalog.engine, row_id(catalog, version), new, current_actor())
    return DescriptionChange(
        ref=version.ref, digest=version.digest, description=new, previous=previous
    )
