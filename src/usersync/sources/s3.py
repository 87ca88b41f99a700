"""S3-compatible object storage on boto3 (AWS S3, MinIO, Cloudflare R2, GCS's S3
interoperability...): one bucket seen as a tree of folders.

Paths are keys written as absolute paths: `/exports/userdata_a.csv` is the key
`exports/userdata_a.csv`. Folders are key prefixes: listing `/exports` lists the prefix
`exports/` with the delimiter `/`, whose common prefixes are the subfolders. Reading starts with
a small ranged GET (a preview needs no more), and streams the rest with one more GET pinned to
the object's ETag, so an object replaced in the middle of a read is noticed, never mixed.

Every botocore error is translated here into `usersync.errors`; every request is bounded by
the connect and I/O timeouts, and tried at most twice (botocore retries throttling, dropped
connections and timeouts once).
"""

from __future__ import annotations

import contextlib
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
import botocore.config
import botocore.exceptions

from usersync.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    ConnectTimeout,
    RemotePathNotFound,
    RemotePermissionDenied,
    RemoteTimeout,
    SourceError,
    UntrustedCertificate,
    UsageError,
    UsersyncError,
)
from usersync.files import EntryKind, RemoteEntry
from usersync.sources.base import ClosesOnExit, Timeouts
from usersync.sources.tls import TRUST_YOUR_CA, tls_context
from usersync.sources.urls import S3Endpoint, TlsTrust
from usersync.streams import ChunkReader

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

HEAD_BYTES = 64 * 1024  # the first ranged GET: enough for a preview
GETS_MAX = 4  # after the head: the rest, and resumes of a stream cut in the middle
DEFAULT_REGION = "us-east-1"
_CHUNK_MAX = 1024 * 1024

_AUTH_CODES = ("InvalidToken", "ExpiredToken", "TokenRefreshRequired", "InvalidSecurity")
_BUSY_CODES = ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout")


class ObjectChanged(UsersyncError):
    """The object was replaced while it was read (its ETag changed): nothing of it is used."""

    transient = True


ATTEMPTS = 2  # of each request, the first included (botocore's standard retries)


@dataclass(frozen=True, repr=False)
class S3Auth:
    """An access key. Kept out of repr so the secret never reaches a log or a traceback."""

    access_key_id: str | None = None
    secret_access_key: str | None = None

    def __repr__(self) -> str:
        return "S3Auth(...)"


def _key(path: str) -> str:
    return path.strip("/")


def _prefix(path: str) -> str:
    key = _key(path)
    return f"{key}/" if key else ""


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


class S3Source(ClosesOnExit):
    """One bucket of an S3-compatible service. Use `S3Source.connect(...)`; close it when
    done."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        endpoint: S3Endpoint,
        access_key_id: str,
        timeouts: Timeouts,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.endpoint = endpoint
        self._key_id = access_key_id
        self._timeouts = timeouts

    @classmethod
    def connect(
        cls,
        bucket: str,
        auth: S3Auth,
        endpoint: S3Endpoint | None = None,
        trust: TlsTrust | None = None,
        timeouts: Timeouts | None = None,
    ) -> S3Source:
        """A client for `bucket`, checked with one small listing: an unreachable endpoint,
        unknown credentials or a missing bucket fail here, with a clear error."""
        endpoint = endpoint or S3Endpoint()
        trust = trust or TlsTrust()
        timeouts = timeouts or Timeouts()
        if not auth.access_key_id or not auth.secret_access_key:
            raise AuthenticationFailed(
                f"no access key for s3://{bucket}: give --access-key-id ID (or set "
                "AWS_ACCESS_KEY_ID) and --secret-env VAR naming the variable that holds the "
                "secret access key (or set AWS_SECRET_ACCESS_KEY)"
            )
        session = boto3.session.Session(
            aws_access_key_id=auth.access_key_id,
            aws_secret_access_key=auth.secret_access_key,
            region_name=endpoint.region,
        )
        config = botocore.config.Config(
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.io,
            # Two attempts in all: a dropped connection or a throttled request gets a second
            # chance, and a silent service costs twice the timeout, as the errors say.
            retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
            s3={"addressing_style": "path" if endpoint.path_style else "auto"},
            signature_version="s3v4",
            # Checksums on every request are newer than many S3-compatible services.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        verify: bool | str | None = None  # botocore's default: the system's authorities
        if trust.ca_file is not None:
            tls_context(trust)  # a missing or unreadable file is a usage error, as for FTPS
            verify = trust.ca_file
        elif not trust.verify:
            verify = False
        try:
            client = session.client(
                "s3",
                region_name=endpoint.region or session.region_name or DEFAULT_REGION,
                endpoint_url=endpoint.url,
                config=config,
                verify=verify,
            )
        except ValueError as exc:  # a malformed endpoint URL
            raise UsageError(f"--endpoint-url {endpoint.url!r}: {exc}") from None
        source = cls(client, bucket, endpoint, auth.access_key_id, timeouts)
        source._check_bucket()
        return source

    def __repr__(self) -> str:
        return f"S3Source(s3://{self.bucket} at {self.service})"

    @property
    def service(self) -> str:
        """The endpoint, for messages."""
        if self.endpoint.url:
            return self.endpoint.url
        return f"AWS S3 ({self._client.meta.region_name})"

    def _where(self, path: str) -> str:
        return f"s3://{self.bucket}{path}"

    def _check_bucket(self) -> None:
        try:
            with self._call("/", "listing the bucket", "s3:ListBucket"):
                self._client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except RemotePermissionDenied:
            pass  # a key that may read objects without listing them: fine until it lists

    # --- errors ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _call(self, path: str, what: str, permission: str) -> Iterator[None]:
        """Translate what goes wrong in the block into usersync's errors. `permission`: the
        IAM action the request needs, named when access is denied."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            raise self._refusal(exc, path, what, permission) from exc
        except botocore.exceptions.ConnectTimeoutError as exc:
            raise ConnectTimeout(
                f"{self.service} did not accept a connection within "
                f"{self._timeouts.connect:g} s ({ATTEMPTS} attempts); check --endpoint-url and "
                "the network"
            ) from exc
        except (botocore.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise RemoteTimeout(
                f"{self._where(path)}: {self.service} did not answer within "
                f"{self._timeouts.io:g} s while {what} ({ATTEMPTS} attempts); it may be "
                "overloaded or the network down. Try again later."
            ) from exc
        except botocore.exceptions.SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                why = re.search(r"certificate verify failed: ([^(]+)", str(exc))
                raise UntrustedCertificate(
                    f"the TLS certificate of {self.service} is not trusted "
                    f"({why.group(1).strip() if why else exc}). {TRUST_YOUR_CA}"
                ) from exc
            raise SourceError(f"TLS failed with {self.service}: {exc}") from exc
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ProxyConnectionError,
        ) as exc:
            raise ConnectFailed(
                f"cannot reach {self.service}: {exc}. Check --endpoint-url (and --region), and "
                "that the service is running."
            ) from exc
        except (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
        ) as exc:
            raise AuthenticationFailed(f"no usable access key for {self.service}: {exc}") from exc
        except botocore.exceptions.ParamValidationError as exc:
            raise UsageError(f"{self._where(path)}: {exc}") from exc
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise ConnectionLost(
                f"{self._where(path)}: the connection to {self.service} was lost while {what} "
                f"({exc}); nothing was changed. Try again."
            ) from exc

    def _refusal(
        self, exc: botocore.exceptions.ClientError, path: str, what: str, permission: str
    ) -> UsersyncError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code.isdigit() and 400 <= status < 500 and not exc.operation_name.startswith("Head"):
            # An S3 service says what went wrong in its answer (only HEAD answers are empty):
            # a bare status comes from some other web server.
            return SourceError(
                f"{self.service} answered HTTP {status} ({message}) while {what}, without an "
                "S3 error: it does not seem to be an S3-compatible service. Check its address "
                "(--endpoint-url, or the connection's endpoint_url)."
            )
        if code == "NoSuchBucket":
            return RemotePathNotFound(
                f"bucket {self.bucket!r} does not exist at {self.service}: check the bucket "
                "name in s3://BUCKET/... and the service's address (--endpoint-url, --region)"
            )
        if code in ("NoSuchKey", "NotFound") or status == 404:
            return RemotePathNotFound(f"{self._where(path)} does not exist")
        if code == "InvalidAccessKeyId":
            return AuthenticationFailed(
                f"{self.service} does not know the access key id {self._key_id!r}: check "
                "--access-key-id (or AWS_ACCESS_KEY_ID)"
            )
        if code == "SignatureDoesNotMatch":
            return AuthenticationFailed(
                f"{self.service} refused the secret access key of {self._key_id!r} (the "
                "request's signature does not match): check the secret given with "
                "--secret-env VAR (or AWS_SECRET_ACCESS_KEY)"
            )
        if code in _AUTH_CODES:
            return AuthenticationFailed(f"{self.service} refused the access key: {message}")
        if code == "PreconditionFailed" or status == 412:
            return ObjectChanged(
                f"{self._where(path)} was replaced while it was read; nothing of it was "
                "used. Run again once the upload is complete."
            )
        if code == "InvalidObjectState":
            return RemotePermissionDenied(
                f"{self._where(path)} is archived ({message}): restore it before importing it"
            )
        if code == "AccessDenied" or status == 403:
            return RemotePermissionDenied(
                f"{self._where(path)}: access denied while {what} ({message}); the access key "
                f"{self._key_id!r} needs the {permission} permission on bucket {self.bucket!r}"
            )
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed") or status == 301:
            return SourceError(
                f"{self._where(path)}: {self.service} says the bucket lives elsewhere "
                f"({message}); give its region with --region (or its address with "
                "--endpoint-url)"
            )
        if code in _BUSY_CODES or status >= 500:
            return ConnectionLost(
                f"{self._where(path)}: {self.service} failed while {what} ({code}: {message}); "
                "nothing was changed. Try again later."
            )
        return SourceError(
            f"{self._where(path)}: {self.service} refused {what} ({code}: {message})"
        )

    # --- the Source protocol -----------------------------------------------------------------

    def list_dir(self, path: str) -> list[RemoteEntry]:
        prefix = _prefix(path)
        entries: list[RemoteEntry] = []
        seen = False  # anything at all under the prefix, a folder marker included
        paginator = self._client.get_paginator("list_objects_v2")
        with self._call(path, "listing the folder", "s3:ListBucket"):
            pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    seen = True
                    name = common.get("Prefix", "")[len(prefix) :].rstrip("/")
                    if name:
                        folder = posixpath.join(path, name)
                        entries.append(RemoteEntry(name, folder, EntryKind.DIRECTORY))
                for item in page.get("Contents", []):
                    seen = True
                    name = item.get("Key", "")[len(prefix) :]
                    if not name:  # the folder's own marker object ("exports/")
                        continue
                    entries.append(
                        RemoteEntry(
                            name,
                            posixpath.join(path, name),
                            EntryKind.FILE,
                            item.get("Size"),
                            _utc(item.get("LastModified")),
                        )
                    )
        if not seen and prefix:
            if self._head(path) is not None:
                raise RemotePathNotFound(f"{self._where(path)} is a file, not a folder")
            raise RemotePathNotFound(
                f"{self._where(path)} does not exist (no object's key begins with {prefix!r})"
            )
        return entries

    def start_folder(self) -> str:
        return "/"  # a bucket has no home folder: its top level

    def stat(self, path: str) -> RemoteEntry:
        name = posixpath.basename(path.rstrip("/")) or "/"
        if not _key(path):
            return RemoteEntry("/", "/", EntryKind.DIRECTORY)
        head = self._head(path)
        if head is not None:
            size, modified = head
            return RemoteEntry(name, path, EntryKind.FILE, size, modified)
        with self._call(path, "looking for it", "s3:ListBucket"):
            found = self._client.list_objects_v2(
                Bucket=self.bucket, Prefix=_prefix(path), MaxKeys=1
            )
        if found.get("KeyCount", 0):
            return RemoteEntry(name, path, EntryKind.DIRECTORY)
        raise RemotePathNotFound(f"{self._where(path)} does not exist")

    def _head(self, path: str) -> tuple[int, datetime | None] | None:
        """Size and time of the object at `path`, or None when there is none."""
        try:
            with self._call(path, "reading its size", "s3:GetObject"):
                head = self._client.head_object(Bucket=self.bucket, Key=_key(path))
        except RemotePathNotFound:
            return None
        return head.get("ContentLength", 0), _utc(head.get("LastModified"))

    def open(self, path: str) -> BinaryIO:
        reader = _ObjectReader(self, path)
        reader.start()
        return cast(BinaryIO, reader)

    def rename(self, path: str, new_path: str) -> None:
        """Copy, then delete the original (S3 has no rename); the copy keeps the metadata."""
        if self._head(new_path) is not None:
            raise SourceError(f"cannot move {path} to {self._where(new_path)}: it already exists")
        with self._call(path, f"copying it to {new_path}", "s3:GetObject and s3:PutObject"):
            self._client.copy_object(
                Bucket=self.bucket,
                Key=_key(new_path),
                CopySource={"Bucket": self.bucket, "Key": _key(path)},
            )
        with self._call(path, "deleting it after copying it", "s3:DeleteObject"):
            self._client.delete_object(Bucket=self.bucket, Key=_key(path))

    def remove(self, path: str) -> None:
        # S3 deletes a missing key without a word; say it like the other stores do
        if self._head(path) is None:
            raise RemotePathNotFound(f"{self._where(path)} does not exist")
        with self._call(path, "deleting it", "s3:DeleteObject"):
            self._client.delete_object(Bucket=self.bucket, Key=_key(path))

    def close(self) -> None:
        self._client.close()


_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")


class _ObjectReader(ChunkReader):
    """An object as a binary stream: the head with a ranged GET, the rest streamed by a second
    GET from there, pinned to the first one's ETag (a replaced object fails with
    ObjectChanged). A stream cut midway resumes from where it stopped, a few times."""

    def __init__(self, source: S3Source, path: str) -> None:
        super().__init__()
        self._source = source
        self._path = path
        self._body: StreamingBody | None = None
        self._size = 0  # the object's, known once `start` has run
        self._etag: str | None = None
        self._position = 0
        self._gets = 0  # GETs after the head
        self._cut: SourceError | None = None  # why the last stream stopped early
        self.bytes_received = 0

    def _call(self, what: str) -> contextlib.AbstractContextManager[None]:
        return self._source._call(self._path, what, "s3:GetObject")

    def start(self) -> None:
        """GET the head of the object (errors about the object itself show up here)."""
        source = self._source
        with self._call("opening it"):
            try:
                response = source._client.get_object(
                    Bucket=source.bucket, Key=_key(self._path), Range=f"bytes=0-{HEAD_BYTES - 1}"
                )
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                    raise
                return  # an empty object has no byte 0 to ask for: its size is 0
        self._etag = response.get("ETag")
        match = _CONTENT_RANGE.fullmatch(response.get("ContentRange", ""))
        self._size = int(match.group(1)) if match else response.get("ContentLength", 0)
        self._body = response["Body"]

    def _rest(self) -> StreamingBody:
        source = self._source
        if self._gets >= GETS_MAX:
            raise ConnectionLost(
                f"{source._where(self._path)}: {source.service} stopped sending it before its "
                f"end ({self._position:,} of {self._size:,} bytes read, {self._gets + 1} "
                "tries); nothing was changed. Try again."
            ) from self._cut
        self._gets += 1
        options: dict[str, Any] = {"Range": f"bytes={self._position}-"}
        if self._etag:
            options["IfMatch"] = self._etag
        with self._call("reading it"):
            response = source._client.get_object(
                Bucket=source.bucket, Key=_key(self._path), **options
            )
        return response["Body"]

    def read_chunk(self, size: int) -> bytes:
        while self._position < self._size:
            if self._body is None:
                try:
                    self._body = self._rest()
                except ConnectFailed as error:
                    if self._cut is None:
                        raise
                    source = self._source
                    raise ConnectionLost(
                        f"{source._where(self._path)}: the connection to {source.service} was "
                        f"lost while reading it ({self._position:,} of {self._size:,} "
                        "bytes read), and the service cannot be reached again; nothing was "
                        "changed. Try again later."
                    ) from error
            try:
                with self._call("reading it"):
                    data = self._body.read(min(size, _CHUNK_MAX))
            except (ConnectionLost, RemoteTimeout) as error:
                self._release()  # and resume from here with the next GET
                self._cut = error
                continue
            if data:
                self._position += len(data)
                self.bytes_received += len(data)
                return data
            self._release()  # this GET's range is done; the next one goes on from here
        self._release()
        return b""

    def _release(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            with contextlib.suppress(Exception):  # dropping a response cannot fail usefully
                body.close()

    def close(self) -> None:
        if not self.closed:
            try:
                self._release()
            finally:
                super().close()
