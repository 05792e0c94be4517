"""A throw-away S3-compatible object store for the DuckLake tests: moto's S3 server on 127.0.0.1.

moto's ``ThreadedMotoServer`` is a real HTTP server speaking the S3 REST API (signed requests,
multipart uploads, ranged GETs), which is what DuckDB's httpfs talks to. It runs in this process
on a free port; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from monitor.store.ducklake import S3Access

KEY_ID = "monitor-test-key"
SECRET = "monitor-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class ObjectStore:
    """A running S3 server and a client to inspect it."""

    endpoint: str  # host:port
    client: Any  # a boto3 S3 client bound to the endpoint

    @property
    def url(self) -> str:
        """The endpoint as an http:// URL, as ``MONITOR_S3_ENDPOINT`` takes it."""
        return f"http://{self.endpoint}"

    def access(self) -> S3Access:
        """The credentials DuckDB needs for this server."""
        return S3Access(KEY_ID, SECRET, self.endpoint, REGION, "path", use_ssl=False)

    def create_bucket(self, name: str) -> str:
        """A new empty bucket; returns its name."""
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in a bucket under a prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextmanager
def running_object_store() -> Iterator[ObjectStore]:
    """Start moto's S3 server on a free 127.0.0.1 port; stop it on exit."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"{host}:{port}"
        # Explicit endpoint, keys and region: boto3 consults no AWS configuration or metadata service.
        client = boto3.client(
            "s3", endpoint_url=f"http://{endpoint}", aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET, region_name=REGION,
        )  # fmt: skip
        yield ObjectStore(endpoint, client)
    finally:
        server.stop()
