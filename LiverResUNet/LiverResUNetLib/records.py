"""Dataclasses read back from plain dicts (model cards are JSON), refusing keys this version does not know."""

import dataclasses


def dataclass_from_dict(cls, values, what):
    """``cls(**values)``; ValueError naming the unknown keys, ``what`` saying which kind of values they are."""
    unknown = sorted(set(values) - {field.name for field in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(unknown)}")
    return cls(**values)
