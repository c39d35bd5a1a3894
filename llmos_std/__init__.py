"""LLMOS standard: the wire models, operation table and requirement registry every other part derives from."""

from __future__ import annotations

STANDARD_VERSION = "1.0"
"""The version of the standard this package defines (MAJOR.MINOR)."""

STANDARD_MAJOR = 1

__all__ = ["STANDARD_MAJOR", "STANDARD_VERSION"]
