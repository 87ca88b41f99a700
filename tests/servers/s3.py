"""moto's S3 in server mode, on 127.0.0.1 and a free port, with authentication turned on:

    with MotoS3Server() as server:
        bucket = server.bucket("acme")            # a fresh, empty bucket (S3Bucket)
        bucket.put("in/userdata_1.csv", b"userId\\n1\\n")
        bucket.url("in")                           # s3://acme/in
        # reach it at server.endpoint_url with server.access_key_id / secret_access_key

moto runs in a child process (`python -m moto.server`, its own log in the server's folder
under /var/lib/usersync-test). At start an IAM user with full S3 access and its access key
are made, then moto is told to check every request's signature from then on: an unknown
access key or a wrong secret is refused as AWS would (InvalidAccessKeyId,
SignatureDoesNotMatch). `MotoS3Server(tls=True)` serves https, with a certificate from the
FTP servers' test CA (`ca_file`).
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import boto3
import botocore.config

from tests.servers import (
    LOOPBACK,
    ProcessServer,
    kill_stale_server,
    make_state_dir,
    register_stale_cleaner,
)
from tests.servers.ftpd import certificates

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

START_TIMEOUT = 30.0
DIR_PREFIX = "moto-"
REGION = "us-east-1"
_S3_FULL_ACCESS = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
)


register_stale_cleaner(
    DIR_PREFIX, lambda directory: kill_stale_server(directory / "server.pid", b"moto.server")
)


class MotoS3Server(ProcessServer):
    """moto's server (S3, IAM) with request signing checked. Attributes after `start()`:
    `endpoint_url`, `port`, `region`, `access_key_id`, `secret_access_key`, `log_path`.

    `stop()` ends it for good; `kill()` SIGKILLs it (open connections drop)."""

    host = LOOPBACK
    region = REGION
    name = "moto"
    ready_sign = "an HTTP answer"
    log_name = "moto.log"

    def __init__(self, *, tls: bool = False, start_timeout: float = START_TIMEOUT) -> None:
        super().__init__(start_timeout=start_timeout)
        self.tls = tls
        self.access_key_id = ""
        self.secret_access_key = ""
        self._client: S3Client | None = None

    def _prepare(self) -> None:
        self._dir = make_state_dir(DIR_PREFIX)
        if self.tls:
            ca, cert, key = certificates()
            self.ca_file.write_bytes(ca)
            (self.dir / "server.crt").write_bytes(cert)
            (self.dir / "server.key").write_bytes(key)

    def _command(self, port: int) -> list[str]:
        cmd = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
        if self.tls:
            cmd += ["--ssl", "--ssl-cert", str(self.dir / "server.crt")]
            cmd += ["--ssl-key", str(self.dir / "server.key")]
        return cmd

    def _env(self) -> dict[str, str]:
        """No AWS_* settings of the caller's may leak into the server."""
        return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}

    def _ready(self, port: int, timeout: float) -> bool:
        probe = f"{self._scheme}://{LOOPBACK}:{port}/moto-api/"
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(probe, timeout=timeout, context=self._tls_context()),
        ):
            return True
        return False

    def _after_start(self) -> None:
        self._client = None
        self._make_access_key()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._client = None

    def _make_access_key(self) -> None:
        """An IAM user allowed everything on S3, its access key; then signatures are checked."""
        iam = boto3.session.Session(
            aws_access_key_id="setup", aws_secret_access_key="setup", region_name=REGION
        ).client("iam", endpoint_url=self.endpoint_url, verify=self._verify)
        iam.create_user(UserName="usersync-test")
        iam.put_user_policy(
            UserName="usersync-test", PolicyName="s3", PolicyDocument=_S3_FULL_ACCESS
        )
        key = iam.create_access_key(UserName="usersync-test")["AccessKey"]
        self.access_key_id = key["AccessKeyId"]
        self.secret_access_key = key["SecretAccessKey"]
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},  # a form body would hide the count
        )
        with urllib.request.urlopen(request, timeout=10, context=self._tls_context()) as response:
            response.read()

    @property
    def _scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def _verify(self) -> str | None:
        return str(self.ca_file) if self.tls else None

    def _tls_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else None

    @property
    def ca_file(self) -> Path:
        """With `tls=True`: the CA certificate that signed the server's certificate."""
        return self.dir / "ca.pem"

    @property
    def endpoint_url(self) -> str:
        return f"{self._scheme}://{LOOPBACK}:{self.port}"

    def client(self) -> S3Client:
        """An S3 client with the test access key (path-style addressing), made once."""
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> S3Client:
        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=REGION,
        ).client(
            "s3",
            endpoint_url=self.endpoint_url,
            verify=self._verify,
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )

    def bucket(self, name: str) -> S3Bucket:
        """A fresh, empty bucket `name` (emptied and made again if it exists)."""
        bucket = S3Bucket(self, name)
        bucket.remove()
        self.client().create_bucket(Bucket=name)
        return bucket


class S3Bucket:
    """One test's own bucket on the shared moto server, plus the server's credentials."""

    def __init__(self, server: MotoS3Server, name: str) -> None:
        self.server = server
        self.name = name
        self.endpoint_url = server.endpoint_url
        self.region = server.region
        self.access_key_id = server.access_key_id
        self.secret_access_key = server.secret_access_key
        self._client = server.client()

    def url(self, rel: str = "") -> str:
        """`s3://BUCKET/rel`, rel percent-encoded."""
        return f"s3://{self.name}/{quote(rel.lstrip('/'))}"

    def put(self, key: str, data: bytes, **extra: Any) -> None:
        self._client.put_object(Bucket=self.name, Key=key.lstrip("/"), Body=data, **extra)

    def get(self, key: str) -> bytes:
        body: bytes = self._client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def keys(self) -> list[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def remove(self) -> None:
        """Delete every object and the bucket itself (nothing if it does not exist)."""
        try:
            keys = self.keys()
        except self._client.exceptions.NoSuchBucket:
            return
        for key in keys:
            self._client.delete_object(Bucket=self.name, Key=key)
        with contextlib.suppress(urllib.error.URLError):
            self._client.delete_bucket(Bucket=self.name)
