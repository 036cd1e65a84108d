"""What the preprocessor hands a model: the schema of its fields and the encoded arrays.

:class:`FeatureSchema` (one :class:`FieldInfo` per field) is all a model needs
to know about its inputs; :class:`EncodedSplit` holds a split as matrices,
:class:`EncodedColumns` as one array per field (what the cache writes), and
:class:`LocalCodes` one field of one piece coded against the piece's own keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["EncodedColumns", "EncodedSplit", "FeatureSchema", "FieldInfo", "LocalCodes"]


@dataclass(frozen=True)
class FieldInfo:
    """What a model needs to know about one field."""

    name: str
    kind: str
    vocab_size: int
    #: columns the field takes in ``EncodedSplit.categorical`` (a sequence's max_len, else 1)
    width: int = 1
    #: how a sequence's token vectors become one: "sum" or "mean"
    pooling: str = "sum"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "vocab_size": self.vocab_size}
        if self.kind == "sequence":
            d.update(width=self.width, pooling=self.pooling)
        return d


@dataclass(frozen=True)
class FeatureSchema:
    """The fields in the column order of :class:`EncodedSplit`: categorical first, then numeric."""

    fields: tuple[FieldInfo, ...]

    @property
    def categorical(self) -> tuple[FieldInfo, ...]:
        """Fields with a vocabulary: categorical and sequence, in column order."""
        return tuple(f for f in self.fields if f.kind in ("categorical", "sequence"))

    @property
    def widths(self) -> list[int]:
        """Columns per vocabulary field in ``EncodedSplit.categorical`` (1, or a sequence's max_len)."""
        return [f.width for f in self.categorical]

    @property
    def has_sequences(self) -> bool:
        return any(f.kind == "sequence" for f in self.fields)

    @property
    def table_layout(self) -> dict[str, Any]:
        """Keyword arguments that tell a FeatureEmbedding how columns map to fields."""
        return {"widths": self.widths, "pooling": [f.pooling for f in self.categorical]}

    @property
    def numeric(self) -> tuple[FieldInfo, ...]:
        return tuple(f for f in self.fields if f.kind == "numeric")

    @property
    def vocab_sizes(self) -> list[int]:
        """Rows per categorical field, padding and OOV included."""
        return [f.vocab_size for f in self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return {"fields": [f.to_dict() for f in self.fields]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSchema:
        return cls(
            fields=tuple(
                FieldInfo(
                    name=str(f["name"]),
                    kind=str(f["kind"]),
                    vocab_size=int(f["vocab_size"]),
                    width=int(f.get("width", 1)),
                    pooling=str(f.get("pooling", "sum")),
                )
                for f in d["fields"]
            )
        )


@dataclass
class EncodedSplit:
    """One split, encoded: row i of every array is the same sample."""

    categorical: np.ndarray
    numeric: np.ndarray
    label: np.ndarray
    group: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.label)
        shapes_ok = (
            self.categorical.ndim == 2
            and self.numeric.ndim == 2
            and self.label.ndim == 1
            and self.categorical.shape[0] == n
            and self.numeric.shape[0] == n
            and (self.group is None or self.group.shape == (n,))
        )
        if not shapes_ok:
            raise ValueError(
                "EncodedSplit arrays disagree: categorical "
                f"{self.categorical.shape}, numeric {self.numeric.shape}, label {self.label.shape}, "
                f"group {None if self.group is None else self.group.shape}"
            )

    def __len__(self) -> int:
        return int(self.label.shape[0])


@dataclass
class EncodedColumns:
    """One split (or one block of it), encoded, as one array per field.

    What :class:`EncodedSplit` holds, before the fields are stacked into
    matrices: the cache writes each field to its own file, so it never needs
    the stacked copy.
    """

    #: per vocabulary field, in schema order: int32, (n,) or (n, max_len) for a sequence
    categorical: list[np.ndarray]
    #: per numeric field, in schema order: float32, (n,)
    numeric: list[np.ndarray]
    label: np.ndarray
    group: np.ndarray | None = None


@dataclass
class LocalCodes:
    """One vocabulary field of one piece of a split, coded against the piece's own distinct keys.

    :meth:`Preprocessor.fit_chunks` can give these before any vocabulary
    exists; once it does, ``preprocessor.recode(field, distinct)[rows]`` are
    the indices :meth:`Preprocessor.transform` gives the same rows, so a split
    coded this way while it is counted never has to be read again.
    """

    #: the piece's distinct keys, then one null, which stands for the missing values
    distinct: pa.Array
    #: int32: each row's position in ``distinct``
    rows: np.ndarray
