"""Numeric -> bucket functions that turn a number column into a categorical field.

The registry lives in its own module so that :mod:`tf4ctr.data.schema` can
check ``preprocess:`` names while loading a config without importing the
(heavier) preprocessor, and so that :mod:`tf4ctr.data.preprocess` can re-export
it. A bucketer takes float64 values with NaN meaning "missing" and returns
float64 bucket ids, keeping NaN where the input was NaN, so that a missing
value stays missing and ends up as OOV (unless the field sets ``fill_na``,
which is applied before bucketing).

Changing what a registered bucketer returns changes every cache built with it:
bump ``tf4ctr.data.store.FORMAT_VERSION`` when you do.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "NUMERIC_BUCKETERS",
    "TEXT_PREPROCESSORS",
    "bucketize_age",
    "criteo_log_bucket",
    "criteo_log_bucket_fuxictr",
    "extract_country_code",
]


def _log_squared_floor(x: np.ndarray) -> np.ndarray:
    # np.log warns on values <= 0 even where np.where will discard them.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.floor(np.log(x) ** 2)


def criteo_log_bucket(x: np.ndarray) -> np.ndarray:
    """The bucketing as the paper's text describes it: ``floor(ln(x)^2)`` if x > 2, else 1.

    Every value <= 2 (zero and the negative counts Criteo has in I2 included)
    shares bucket 1, which is what "else 1" says. FuxiCTR's code does
    something different for x <= 2: see :func:`criteo_log_bucket_fuxictr`.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.where(x > 2, _log_squared_floor(x), 1.0)
    return np.where(np.isnan(x), np.nan, out)


def criteo_log_bucket_fuxictr(x: np.ndarray) -> np.ndarray:
    """What FuxiCTR's ``convert_to_bucket`` does: ``floor(ln(x)^2)`` if x > 2, else ``int(x)``.

    Values <= 2 keep their own integer (truncated toward zero, like Python's
    ``int``), so 0, 1, 2 and -1 are four different buckets. FuxiCTR fills
    missing values (``fill_na``) before bucketing; here a missing value with no
    ``fill_na`` stays missing and becomes OOV.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.where(x > 2, _log_squared_floor(x), np.trunc(x))
    return np.where(np.isnan(x), np.nan, out)


def bucketize_age(x: np.ndarray) -> np.ndarray:
    """KKBox's ``bd`` as an age bucket: 1-10 → 1, 11-20 → 2, ..., 51-60 → 6, 61-95 → 7.

    Ages outside [1, 95] (KKBox has 0 for most users and some negative or
    four-digit values) and missing ones become missing, i.e. OOV, as in the
    BARS KKBox_x1 preprocessing, which maps them to an empty string.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.minimum(np.ceil(x / 10.0), 7.0)
    return np.where((x >= 1) & (x <= 95), out, np.nan)


def extract_country_code(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """The country code of an ISRC (its first two characters; KKBox's ``isrc``)."""
    return pc.utf8_slice_codeunits(values, 0, 2)


NUMERIC_BUCKETERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "criteo_log_bucket": criteo_log_bucket,
    "criteo_log_bucket_fuxictr": criteo_log_bucket_fuxictr,
    # FuxiCTR's own name for the same function, so its Criteo YAML loads as is.
    "convert_to_bucket": criteo_log_bucket_fuxictr,
    "bucketize_age": bucketize_age,
}

#: preprocessors that map a text column to other text (no numbers read)
TEXT_PREPROCESSORS: dict[str, Callable[[pa.ChunkedArray], pa.ChunkedArray]] = {
    "extract_country_code": extract_country_code,
}
