"""Blob download over HTTP: an installed package fetched by digest byte for byte, by keys that may write packages only."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmos_std.manifest import manifest_digest
from reference_impl.settings import Settings
from tests.support.server import RunningServer, running_server

KEY = "sk-llmos-blob-test-key"
OCTETS = {"content-type": "application/octet-stream"}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Iterator[RunningServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("blob-server"), models=[tiny_llama_dir], api_keys=[KEY])
    with running_server(settings) as srv:
        yield srv


@pytest.fixture()
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def test_every_blob_of_an_installed_package_comes_back_exactly(http: httpx.Client) -> None:
    version = http.get("/llmos/v1/models").json()["data"][0]["versions"][0]
    manifest = http.get(f"/llmos/v1/packages/{version['digest']}").json()
    assert manifest_digest(manifest) == version["digest"]
    for entry in manifest["files"]:  # what a replica or mirror does: the manifest by digest, then each file by digest
        answer = http.get(f"/llmos/v1/blobs/{entry['digest']}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["etag"] == f'"{entry["digest"]}"'
        assert int(answer.headers["content-length"]) == len(answer.content) == entry["size"]
        assert _digest(answer.content) == entry["digest"], entry["path"]


def test_an_uploaded_blob_streams_back_as_uploaded(http: httpx.Client) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several 1 MiB reads plus a tail
    digest = _digest(data)
    assert http.put(f"/llmos/v1/blobs/{digest}", content=data, headers=OCTETS).status_code == 201
    with http.stream("GET", f"/llmos/v1/blobs/{digest}") as answer:
        assert answer.status_code == 200 and "transfer-encoding" not in answer.headers
        received = b"".join(answer.iter_raw())
    assert received == data
    head = http.head(f"/llmos/v1/blobs/{digest}")  # still head_blob, not the GET route answering HEAD
    assert (head.status_code, head.headers["content-length"], head.headers["docker-content-digest"], head.content) == (200, str(len(data)), digest, b"")


def test_unknown_and_malformed_digests_are_refused(http: httpx.Client) -> None:
    unknown = http.get(f"/llmos/v1/blobs/{_digest(b'never uploaded')}")
    assert (unknown.status_code, unknown.json()["error"]["code"], unknown.json()["error"]["param"]) == (404, "blob_unknown", "digest")
    malformed = http.get(f"/llmos/v1/blobs/sha256:{'A' * 64}")
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "digest_invalid")


def test_only_keys_that_may_write_packages_read_blobs(http: httpx.Client) -> None:
    package = http.get("/llmos/v1/models").json()["data"][0]["versions"][0]["digest"]
    blob = http.get(f"/llmos/v1/packages/{package}").json()["files"][0]["digest"]

    def key(scopes: list[str]) -> dict[str, str]:
        created = http.post("/llmos/v1/keys", json={"name": "-".join(scopes).replace(":", "-"), "scopes": scopes})
        assert created.status_code == 201, created.text
        return {"Authorization": f"Bearer {created.json()['secret']}"}

    # An inference key that may list models reads the manifest, never the weights.
    runner = key(["inference", "models:read"])
    assert http.get(f"/llmos/v1/packages/{package}", headers=runner).status_code == 200
    refused = http.get(f"/llmos/v1/blobs/{blob}", headers=runner)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "insufficient_scope")
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert http.get(f"/llmos/v1/blobs/{blob}", headers=key(["packages:write"])).status_code == 200
    missing = http.get(f"/llmos/v1/blobs/{blob}", headers={"Authorization": ""})
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_api_key")
