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
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import boto3
import botocore.config

from tests.servers import (
    LOOPBACK,
    ServerError,
    free_port,
    freeze_tree,
    kill_procs,
    make_state_dir,
    register_stale_cleaner,
    stop_procs,
    tail,
    wait_gone,
)
from tests.servers.ftpd import certificates

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

START_TIMEOUT = 30.0
BIND_ATTEMPTS = 5
DIR_PREFIX = "moto-"
REGION = "us-east-1"
_BIND_FAILURES = ("Address already in use",)
_S3_FULL_ACCESS = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
)


def _kill_stale(directory: Path) -> None:
    try:
        pid = int((directory / "server.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if b"moto.server" in cmdline:
        procs = freeze_tree(pid)
        kill_procs(procs)
        wait_gone(procs, 5.0)


register_stale_cleaner(DIR_PREFIX, _kill_stale)


class MotoS3Server:
    """moto's server (S3, IAM) with request signing checked. Attributes after `start()`:
    `endpoint_url`, `port`, `region`, `access_key_id`, `secret_access_key`, `log_path`."""

    host = LOOPBACK
    region = REGION

    def __init__(self, *, tls: bool = False, start_timeout: float = START_TIMEOUT) -> None:
        self.tls = tls
        self.start_timeout = start_timeout
        self._dir: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.access_key_id = ""
        self.secret_access_key = ""
        self._client: S3Client | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        if self._proc is not None:
            raise ServerError("the moto server is already running")
        try:
            self._dir = make_state_dir(DIR_PREFIX)
            if self.tls:
                ca, cert, key = certificates()
                self.ca_file.write_bytes(ca)
                (self.dir / "server.crt").write_bytes(cert)
                (self.dir / "server.key").write_bytes(key)
            for _ in range(BIND_ATTEMPTS):
                port = free_port()
                if self._launch(port):
                    self._port = port
                    break
            else:
                raise ServerError(f"moto found no free port:\n{tail(self.log_path)}")
            self._make_access_key()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            if self._proc is not None:
                left = stop_procs(freeze_tree(self._proc.pid), grace=5.0)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
                self._proc = None
                if left:
                    raise ServerError(f"moto processes {left} survived SIGKILL")
        finally:
            self._port = None
            self._client = None
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def kill(self) -> None:
        """SIGKILL the server; open connections drop."""
        if self._proc is None:
            return
        procs = freeze_tree(self._proc.pid)
        kill_procs(procs)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        self._proc = None
        if wait_gone(procs, 5.0):
            raise ServerError("moto processes survived SIGKILL")

    def _launch(self, port: int) -> bool:
        cmd = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
        if self.tls:
            cmd += ["--ssl", "--ssl-cert", str(self.dir / "server.crt")]
            cmd += ["--ssl-key", str(self.dir / "server.key")]
        # no AWS_* settings of the caller's may leak into the server
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        (self.dir / "server.pid").write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                self._proc = None
                text = tail(self.log_path)
                if any(failure in text for failure in _BIND_FAILURES):
                    return False
                raise ServerError(f"moto exited at start.\nlog {self.log_path}:\n{text}")
            probe = f"{self._scheme}://{LOOPBACK}:{port}/moto-api/"
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(probe, timeout=2, context=self._tls_context()),
            ):
                return True
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"moto did not answer on {LOOPBACK}:{port} within {self.start_timeout} s."
                    f"\nlog {self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.05)

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
    def dir(self) -> Path:
        if self._dir is None:
            raise ServerError("the moto server is not started")
        return self._dir

    @property
    def log_path(self) -> Path:
        return self.dir / "moto.log"

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("the moto server is not started")
        return self._port

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
