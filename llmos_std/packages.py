"""Two-phase package upload, as in the OCI distribution spec: blobs by digest, then the manifest."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmos_std.models import DIGEST_PATTERN
from llmos_std.wire import OpenWireModel


class BlobInfo(OpenWireModel):
    """A stored, verified blob."""

    object: Literal["llmos.blob"] = "llmos.blob"
    digest: str = Field(pattern=f"^{DIGEST_PATTERN}$")
    size: int = Field(ge=0)
