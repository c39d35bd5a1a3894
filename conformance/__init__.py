"""The LLMOS conformance kit: tests any endpoint against the requirements of the profiles it claims."""

from __future__ import annotations

KIT_NAME = "llmos-conformance"
KIT_VERSION = "1.0.0"
