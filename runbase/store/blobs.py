"""Where file bytes lie: one small interface, ``BlobStore``, over the data directory
(``LocalBlobs``, the default) or S3-compatible object storage (``S3Blobs``), which several
server processes can share.

A blob is addressed by a key (``"<run>/<file name>"``). ``write`` streams chunks in and replaces
an older blob only once every chunk has arrived: when the chunks raise, the older blob stays.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import urlsplit

from runbase.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

PART_SIZE = 8 << 20  # bytes of an S3 multipart upload's part (at least 5 MiB but the last)


class BlobStore(Protocol):
    def write(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Store the chunks under ``key``; their size and hex md5."""

    def read(self, key: str, chunk_size: int) -> Iterator[bytes]:
        """The blob's bytes, in chunks of about ``chunk_size``; ``NotFound`` when missing."""

    def delete(self, key: str) -> None:
        """Remove the blob; nothing when there is none."""

    def exists(self, key: str) -> bool: ...


def open_blobs(files: str | None, files_dir: Path) -> BlobStore:
    """The blob store ``files`` names: ``s3://bucket/prefix``, or ``files_dir`` when None."""
    if not files:
        return LocalBlobs(files_dir)
    where = urlsplit(files)
    if where.scheme != "s3" or not where.netloc:
        raise InvalidInput(f"files must be s3://bucket/prefix, not {files!r}")
    return S3Blobs(where.netloc, where.path.strip("/"))


class _Digest:
    """Size and md5 of the chunks that pass through."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5()
        self.size = 0

    def chunks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise InvalidInput(f"file chunks must be bytes, not {type(chunk).__name__}")
            self.md5.update(chunk)
            self.size += len(chunk)
            yield bytes(chunk)

    def result(self) -> tuple[int, str]:
        return self.size, self.md5.hexdigest()


class LocalBlobs:
    """Blobs as files under ``root``, replaced atomically (write a temporary file, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    def write(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = _Digest()
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            try:
                for chunk in digest.chunks(chunks):
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            except BaseException:
                tmp.close()
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, target)
        return digest.result()

    def read(self, key: str, chunk_size: int) -> Iterator[bytes]:
        try:
            file = self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"file {key.partition('/')[2]!r} not found") from None
        return _file_chunks(file, chunk_size)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


def _file_chunks(file: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with file:
        while chunk := file.read(chunk_size):
            yield chunk


class S3Blobs:
    """Blobs as objects under ``prefix`` in an S3 bucket. The endpoint, region and credentials
    come from the usual AWS settings (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ...). Writes go up as a multipart upload
    of ``PART_SIZE`` parts (one part in memory at a time), aborted when the chunks raise."""

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        if client is None:
            import boto3  # only where object storage is used: it is slow to import

            client = boto3.client("s3")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def write(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        digest = _Digest()
        parts = _parts(digest.chunks(chunks), PART_SIZE)
        first = next(parts, b"")
        second = next(parts, None)
        bucket, target = self.bucket, self._key(key)
        if second is None:  # small enough for one request
            self.client.put_object(Bucket=bucket, Key=target, Body=first)
            return digest.result()
        upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=target)["UploadId"]
        try:
            done: list[CompletedPartTypeDef] = []
            for number, part in enumerate(_chain(first, second, parts), start=1):
                sent = self.client.upload_part(
                    Bucket=bucket, Key=target, UploadId=upload_id, PartNumber=number, Body=part
                )
                done.append({"ETag": sent["ETag"], "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        except BaseException:
            self.client.abort_multipart_upload(Bucket=bucket, Key=target, UploadId=upload_id)
            raise
        return digest.result()

    def read(self, key: str, chunk_size: int) -> Iterator[bytes]:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            raise NotFound(f"file {key.partition('/')[2]!r} not found") from None
        return _body_chunks(found["Body"], chunk_size)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


def _parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The chunks regrouped into parts of ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _chain(first: bytes, second: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield second
    yield from rest


def _body_chunks(body: StreamingBody, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()
