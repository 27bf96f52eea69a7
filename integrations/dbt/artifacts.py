"""Lenient, fast readers for dbt's JSON artifacts.

manifest.json (v10–v12), run_results.json (v4–v6), catalog.json (v1) and sources.json (v1–v3)
are decoded with msgspec into Structs that hold only the fields pipebot uses: everything else in
the file is skipped by the decoder without being materialised, which is what makes a 35 MB
manifest load in well under a second. Every field is optional and statuses stay plain strings,
so an artifact from an older or newer dbt (or dbt Cloud, or a hand-trimmed file) still reads::

    loaded = read_manifest(Path("target/manifest.json").read_bytes())
    loaded.value.nodes["model.shop.fct_orders"].config.meta   # {'owner': '@dana'}

When a file does not fit the Structs (a field of an unexpected type somewhere), the reader
falls back to converting entry by entry and drops only the entries that cannot be read;
`Loaded.dropped` counts them so ``pipebot doctor`` can say so.
"""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import UnionType
from typing import Any, Generic, TypeVar, Union, get_args, get_origin

import msgspec
from msgspec import Struct, field

from bot.owners import merge_people

__all__ = [
    "ArtifactError",
    "Catalog",
    "Loaded",
    "Manifest",
    "RunResults",
    "SourcesArtifact",
    "freshness_rule",
    "normalize_owners",
    "parse_time",
    "read_catalog",
    "read_manifest",
    "read_run_results",
    "read_sources",
    "schema_version",
]

# Versions pipebot is tested with; others are still read (the formats grow by addition) and
# `pipebot doctor` reports them.
SUPPORTED_VERSIONS: dict[str, range] = {
    "manifest": range(10, 13),
    "run-results": range(4, 7),
    "catalog": range(1, 2),
    "sources": range(1, 4),
}

T = TypeVar("T")
ColumnT = TypeVar("ColumnT", bound="Column")


class ArtifactError(ValueError):
    """The bytes are not a dbt artifact at all (not JSON, not an object)."""


# --- shared pieces -------------------------------------------------------------------------


class _Struct(Struct, gc=False):
    """Base: unknown fields ignored (msgspec's default); no GC tracking, as nothing cycles."""


class Metadata(_Struct):
    dbt_schema_version: str | None = None
    dbt_version: str | None = None
    generated_at: str | None = None
    invocation_id: str | None = None
    project_name: str | None = None
    adapter_type: str | None = None


class DependsOn(_Struct):
    nodes: list[str] | None = None


class Contract(_Struct):
    enforced: bool | None = None


class Time(_Struct):
    count: int | None = None
    period: str | None = None


class FreshnessRule(_Struct):
    warn_after: Time | None = None
    error_after: Time | None = None
    filter: str | None = None


class NodeConfig(_Struct):
    materialized: str | None = None
    meta: Any = None
    tags: Any = None
    group: str | None = None
    access: str | None = None
    contract: Contract | None = None
    severity: str | None = None
    enabled: bool | None = None
    # Sources on dbt >= 1.10 keep their freshness and loaded_at_field under config.
    freshness: FreshnessRule | None = None
    loaded_at_field: str | None = None
    loaded_at_query: str | None = None  # dbt >= 1.10: a query instead of a column


class Column(_Struct):
    # Column meta is not read: skipping it saves two dicts per column on large projects.
    name: str | None = None
    description: str | None = None
    data_type: str | None = None


class TestMetadata(_Struct):
    name: str | None = None
    namespace: str | None = None


# --- manifest.json -------------------------------------------------------------------------


class Node(_Struct):
    """Models, seeds, snapshots, tests, analyses, hooks — everything under ``nodes``."""

    name: str | None = None
    resource_type: str | None = None
    package_name: str | None = None
    original_file_path: str | None = None
    path: str | None = None
    description: str | None = None
    meta: Any = None
    tags: Any = None
    config: NodeConfig | None = None
    group: str | None = None
    access: str | None = None
    contract: Contract | None = None
    # Mapping, not dict: the schema review's Structs (state.py) read richer columns.
    columns: Mapping[str, Column] | None = None
    relation_name: str | None = None
    depends_on: DependsOn | None = None
    test_metadata: TestMetadata | None = None
    column_name: str | None = None
    attached_node: str | None = None
    version: Any = None
    # The SQL, read to tell which columns of its parents a model selects (schema review).
    # compiled_code is there only for nodes the invocation compiled.
    raw_code: str | None = None
    compiled_code: str | None = None


class Source(_Struct):
    name: str | None = None
    source_name: str | None = None
    resource_type: str | None = None
    package_name: str | None = None
    original_file_path: str | None = None
    description: str | None = None
    source_description: str | None = None
    meta: Any = None
    source_meta: Any = None
    tags: Any = None
    config: NodeConfig | None = None
    columns: Mapping[str, Column] | None = None  # Mapping: as on Node
    relation_name: str | None = None
    loaded_at_field: str | None = None
    loaded_at_query: str | None = None
    freshness: FreshnessRule | None = None
    loader: str | None = None
    identifier: str | None = None


class Exposure(_Struct):
    name: str | None = None
    label: str | None = None
    kind: str | None = field(default=None, name="type")
    owner: Any = None
    description: str | None = None
    url: str | None = None
    maturity: str | None = None
    package_name: str | None = None
    original_file_path: str | None = None
    depends_on: DependsOn | None = None
    meta: Any = None
    tags: Any = None
    config: NodeConfig | None = None


class Group(_Struct):
    name: str | None = None
    owner: Any = None
    description: str | None = None


class UnitTest(_Struct):
    """A unit test (manifest v12, dbt >= 1.8): fixed input rows for one model and the rows
    it must return. The given/expect rows are not read: the run's message holds the diff."""

    name: str | None = None
    model: str | None = None  # the tested model's name
    version: Any = None  # the tested model's version, for versioned models
    package_name: str | None = None
    original_file_path: str | None = None
    description: str | None = None
    depends_on: DependsOn | None = None  # the tested model's unique id
    config: NodeConfig | None = None


class NodeRelation(_Struct):
    relation_name: str | None = None


class SemanticNode(_Struct):
    """Metrics, semantic models and saved queries: the semantic layer built on models."""

    name: str | None = None
    resource_type: str | None = None
    package_name: str | None = None
    original_file_path: str | None = None
    description: str | None = None
    label: str | None = None
    kind: str | None = field(default=None, name="type")  # metrics: simple, ratio …
    node_relation: NodeRelation | None = None  # semantic models: the model's table
    depends_on: DependsOn | None = None
    group: str | None = None
    meta: Any = None
    tags: Any = None
    config: NodeConfig | None = None


class Manifest(_Struct):
    metadata: Metadata = field(default_factory=Metadata)
    nodes: dict[str, Node] | None = None
    sources: dict[str, Source] | None = None
    exposures: dict[str, Exposure] | None = None
    groups: dict[str, Group] | None = None
    parent_map: dict[str, list[str]] | None = None
    child_map: dict[str, list[str]] | None = None
    unit_tests: dict[str, UnitTest] | None = None
    metrics: dict[str, SemanticNode] | None = None
    semantic_models: dict[str, SemanticNode] | None = None
    saved_queries: dict[str, SemanticNode] | None = None


# --- run_results.json ----------------------------------------------------------------------


class Timing(_Struct):
    name: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class Result(_Struct):
    unique_id: str | None = None
    status: str | None = None
    message: Any = None
    failures: int | None = None
    execution_time: float | None = None
    timing: list[Timing] | None = None
    compiled_code: str | None = None
    compiled_sql: str | None = None  # run_results v4 (dbt < 1.3)
    relation_name: str | None = None


class RunResults(_Struct):
    metadata: Metadata = field(default_factory=Metadata)
    results: list[Result] | None = None
    elapsed_time: float | None = None
    args: dict[str, Any] | None = None


# --- sources.json --------------------------------------------------------------------------


class FreshnessResult(_Struct):
    unique_id: str | None = None
    status: str | None = None
    max_loaded_at: str | None = None
    snapshotted_at: str | None = None
    max_loaded_at_time_ago_in_s: float | None = None
    criteria: FreshnessRule | None = None
    error: Any = None


class SourcesArtifact(_Struct):
    metadata: Metadata = field(default_factory=Metadata)
    results: list[FreshnessResult] | None = None
    elapsed_time: float | None = None


# --- catalog.json --------------------------------------------------------------------------


class CatalogColumn(_Struct):
    name: str | None = None
    kind: str | None = field(default=None, name="type")
    index: int | None = None
    comment: str | None = None


class CatalogTableMeta(_Struct):
    kind: str | None = field(default=None, name="type")
    schema: str | None = None
    name: str | None = None
    database: str | None = None


class CatalogTable(_Struct):
    metadata: CatalogTableMeta | None = None
    columns: dict[str, CatalogColumn] | None = None
    unique_id: str | None = None


class Catalog(_Struct):
    metadata: Metadata = field(default_factory=Metadata)
    nodes: dict[str, CatalogTable] | None = None
    sources: dict[str, CatalogTable] | None = None
    errors: Any = None


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Loaded(Generic[T]):
    """A decoded artifact, its schema version and how many entries could not be read."""

    value: T
    kind: str  # manifest | run-results | catalog | sources | "" when the file does not say
    version: int | None
    dropped: int = 0

    @property
    def supported(self) -> bool:
        known = SUPPORTED_VERSIONS.get(self.kind)
        return known is not None and self.version is not None and self.version in known

    @property
    def label(self) -> str:
        """``manifest v12`` — how the file names itself."""
        return f"{self.kind or 'artifact'} v{self.version}" if self.version else self.kind


_VERSION = re.compile(r"/dbt/([a-z-]+)/v(\d+)\.json")


def schema_version(metadata: Metadata) -> tuple[str, int | None]:
    """``https://schemas.getdbt.com/dbt/manifest/v12.json`` → ``("manifest", 12)``."""
    match = _VERSION.search(metadata.dbt_schema_version or "")
    if match is None:
        return "", None
    return match.group(1), int(match.group(2))


def read_manifest(data: bytes) -> Loaded[Manifest]:
    return _read(data, Manifest)


def read_run_results(data: bytes) -> Loaded[RunResults]:
    return _read(data, RunResults)


def read_sources(data: bytes) -> Loaded[SourcesArtifact]:
    return _read(data, SourcesArtifact)


def read_catalog(data: bytes) -> Loaded[Catalog]:
    return _read(data, Catalog)


# One artifact decoded at a time, in all threads: msgspec builds a Struct type's decoder on
# first use, and two threads doing that at once crash the process (seen loading the base and
# target states of a review together; their Structs share types with the lookups' ones).
# Decoding holds the GIL anyway, so nothing is lost; downloads still run in parallel. It also
# keeps one thread from turning the collector back on while another decodes.
_DECODING = threading.Lock()


def _read(data: bytes, kind: type[T]) -> Loaded[T]:
    dropped = 0
    with _DECODING:
        try:
            with _gc_paused():
                value = msgspec.json.decode(data, type=kind)
        except msgspec.ValidationError:
            value, dropped = _read_entry_by_entry(data, kind)
        except msgspec.DecodeError as exc:
            raise ArtifactError(f"not valid JSON ({exc})") from None
    metadata = getattr(value, "metadata", None)
    name, version = schema_version(metadata) if isinstance(metadata, Metadata) else ("", None)
    return Loaded(value=value, kind=name, version=version, dropped=dropped)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding allocates hundreds of thousands of containers that cannot form cycles; the
    collector would run dozens of times for nothing (it doubles the load time of a 35 MB
    manifest), so it waits until the decode is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_entry_by_entry(data: bytes, kind: type[T]) -> tuple[T, int]:
    """Slow path: keep every entry that reads, drop the ones that don't."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ArtifactError(f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ArtifactError("not a JSON object")
    cleaned: dict[str, Any] = {}
    dropped = 0
    for info in msgspec.structs.fields(kind):  # type: ignore[arg-type]
        if info.encode_name not in raw:
            continue
        value = raw[info.encode_name]
        if _fits(value, info.type):
            cleaned[info.encode_name] = value
            continue
        container = _container(info.type)
        if container is None:
            dropped += 1
            continue
        shape, element = container
        if shape == "dict" and isinstance(value, dict):
            kept = {k: v for k, v in value.items() if _fits(v, element)}
            dropped += len(value) - len(kept)
            cleaned[info.encode_name] = kept
        elif shape == "list" and isinstance(value, list):
            items = [v for v in value if _fits(v, element)]
            dropped += len(value) - len(items)
            cleaned[info.encode_name] = items
        else:
            dropped += 1
    return msgspec.convert(cleaned, kind, strict=False), dropped


def _fits(value: Any, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError:
        return False
    return True


def _container(kind: Any) -> tuple[str, Any] | None:
    options = get_args(kind) if get_origin(kind) in (Union, UnionType) else (kind,)
    for option in options:
        origin = get_origin(option)
        if origin is dict:
            return "dict", get_args(option)[1]
        if origin is list:
            return "list", get_args(option)[0]
    return None


# --- small interpretations shared by the views (local, cloud) and the states of a review ---


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 from any dbt version (``Z``, offsets, 9-digit fractions) → aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fractional digits reliably; trim nanoseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    # dbt writes naive timestamps in UTC (it documents max_loaded_at as UTC).
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_EMAIL_IN_ANGLES = re.compile(r"<\s*([^<>\s]+@[^<>\s]+)\s*>")


def normalize_owners(value: Any) -> tuple[str, ...]:
    """Owners as people write them in ``meta`` or as dbt stores them on groups and exposures.

    Strings may hold several owners (``"@dana, lee@example.com"``); ``"Dana <dana@x.com>"`` and
    ``mailto:`` become the address; emails are lower-cased; ``@handles`` keep their spelling.
    An ``{name, email}`` object (group and exposure owners) yields its emails, else its name —
    the handle someone can be reached by. One person written twice (``"@dana,
    dana@example.com"``) is one owner, by e-mail (`bot.owners.merge_people`).
    """
    return merge_people(_owner_strings(value))


def _owner_strings(value: Any) -> Iterator[str]:
    if value is None:
        return
    if isinstance(value, str):
        for part in re.split(r"[,;\n]", value):
            owner = _one_owner(part)
            if owner:
                yield owner
    elif isinstance(value, dict):
        emails = list(_owner_strings(value.get("email")))
        if emails:
            yield from emails
        else:
            yield from _owner_strings(value.get("name"))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _owner_strings(item)


def _one_owner(text: str) -> str:
    text = text.strip().strip("\"'").strip()
    match = _EMAIL_IN_ANGLES.search(text)
    if match:
        text = match.group(1)
    text = text.removeprefix("mailto:")
    if "@" in text[1:] and " " not in text:
        return text.lower()
    return text


def meta_owner(meta: Any) -> Any:
    """The owner entry of a ``meta`` mapping (``owner``, or ``owners`` as some teams write)."""
    if not isinstance(meta, dict):
        return None
    owner = meta.get("owner")
    return owner if owner is not None else meta.get("owners")


def string_list(value: Any) -> tuple[str, ...]:
    """``tags`` may be a string or a list depending on where and how they were set."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, Iterable) and not isinstance(value, dict):
        return tuple(str(v) for v in value if v is not None and v != "")
    return ()


def merge_tags(*values: Any) -> tuple[str, ...]:
    """The tags of several places (the node, its config), each once, in the order found."""
    found: dict[str, None] = {}
    for value in values:
        if value:  # most are empty: skip the conversion
            found.update((t, None) for t in string_list(value))
    return tuple(found)


def joined_columns(
    declared: Mapping[str, ColumnT] | None, table: CatalogTable | None
) -> Iterator[tuple[str, ColumnT | None, CatalogColumn | None]]:
    """A relation's columns as (name, as declared, as in the catalog): the catalog's first, in
    the warehouse's order, each with the column declared under its name in any case; then the
    declared ones the warehouse lacks. The name is spelled as declared when it is."""
    docs: dict[str, tuple[str, ColumnT]] = {}
    for key, column in (declared or {}).items():
        name = column.name or key
        docs[name.lower()] = (name, column)
    seen: set[str] = set()
    if table is not None and table.columns:
        for key, found in sorted(table.columns.items(), key=lambda kv: kv[1].index or 0):
            name = found.name or key
            lowered = name.lower()
            seen.add(lowered)
            doc = docs.get(lowered)
            if doc is None:
                yield name, None, found
            else:
                yield doc[0], doc[1], found
    for lowered, (name, column) in docs.items():
        if lowered not in seen:
            yield name, column, None


_PERIODS = {"minute": "minute", "hour": "hour", "day": "day"}


def freshness_rule(rule: FreshnessRule | None) -> str:
    """``warn after 6 hours, error after 1 day`` (empty when no limit is configured)."""
    if rule is None:
        return ""
    parts = []
    for label, limit in (("warn", rule.warn_after), ("error", rule.error_after)):
        if limit is None or not limit.count or not limit.period:
            continue
        unit = _PERIODS.get(limit.period, limit.period)
        parts.append(f"{label} after {limit.count} {unit}{'' if limit.count == 1 else 's'}")
    text = ", ".join(parts)
    if text and rule.filter:
        text += f" (where {rule.filter})"
    return text
