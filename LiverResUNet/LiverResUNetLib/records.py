"""Dataclasses read back from plain dicts (model cards are JSON), refusing keys this version does not know."""

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar


class DataclassInstance(Protocol):
    """Any dataclass (what :func:`dataclasses.fields` takes), for type hints."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


Record = TypeVar("Record", bound=DataclassInstance)


def dataclass_from_dict(cls: type[Record], values: Mapping[str, Any], what: str) -> Record:
    """``cls(**values)``; ValueError naming the unknown keys, ``what`` saying which kind of values they are."""
    unknown = sorted(set(values) - {field.name for field in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(unknown)}")
    return cls(**values)
