"""The LLMOS reference server: every profile of the standard on transformers and torch."""

from __future__ import annotations

IMPLEMENTATION_NAME = "llmos-reference"
IMPLEMENTATION_VERSION = "1.0.0"
