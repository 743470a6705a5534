"""Limits on what a request may send, and the checks of an upload.

A JSON body is at most ``MAX_BODY_SIZE`` bytes once gzip-decompressed (which also stops a gzip
bomb); a file at most the app's ``max_file_size``. Beyond either the answer is 413
``payload_too_large``. An upload may announce its size (``Content-Length``) and md5
(``X-Runbase-MD5`` in hex, or ``Content-MD5`` in base64): the bytes that arrive must match, or
the answer is 400 and nothing is stored (an older version of the file stays).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator

from starlette.datastructures import Headers
from starlette.requests import Request

from runbase.errors import InvalidInput, PayloadTooLarge

MAX_BODY_SIZE = 64 << 20
MD5_HEADER = "x-runbase-md5"
_HEX_MD5 = re.compile(r"[0-9a-f]{32}")


def too_large(what: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is larger than the server's limit of {limit} bytes")


def declared_size(headers: Headers) -> int | None:
    """The body's size as ``Content-Length`` declares it, if it does."""
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise InvalidInput(f"Content-Length must be a number of bytes, not {value!r}")
    return int(value)


def declared_md5(headers: Headers) -> str | None:
    """The md5 (in hex) the upload announces, if it does."""
    if MD5_HEADER in headers:
        value = headers[MD5_HEADER].strip().lower()
        if not _HEX_MD5.fullmatch(value):
            raise InvalidInput(f"X-Runbase-MD5 must be 32 hex digits, not {value!r}")
        return value
    if "content-md5" in headers:
        try:
            digest = base64.b64decode(headers["content-md5"], validate=True)
        except binascii.Error:
            digest = b""
        if len(digest) != 16:
            raise InvalidInput("Content-MD5 must be the base64 of 16 bytes")
        return digest.hex()
    return None


def checked_upload(chunks: Iterable[bytes], headers: Headers, limit: int) -> Iterator[bytes]:
    """The chunks of an upload, raising when they pass ``limit`` bytes, or at their end when
    they do not match the size and md5 the headers announce (so the upload is not stored)."""
    size, md5 = declared_size(headers), declared_md5(headers)
    if size is not None and size > limit:
        raise too_large("the file", limit)
    return _checked(chunks, limit, size, md5)


def _checked(
    chunks: Iterable[bytes], limit: int, size: int | None, md5: str | None
) -> Iterator[bytes]:
    digest = hashlib.md5() if md5 is not None else None
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise too_large("the file", limit)
        if digest is not None:
            digest.update(chunk)
        yield chunk
    if size is not None and seen != size:
        raise InvalidInput(f"the file has {seen} bytes, not the {size} announced")
    if digest is not None and digest.hexdigest() != md5:
        raise InvalidInput(f"the file's md5 is {digest.hexdigest()}, not the {md5} announced")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, gzip-decompressed when ``Content-Encoding`` says so; ``PayloadTooLarge``
    past ``limit`` bytes, before or after decompression."""
    size = declared_size(request.headers)
    if size is not None and size > limit:
        raise too_large("the request body", limit)
    parts = []
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large("the request body", limit)
        parts.append(chunk)
    body = b"".join(parts)
    if "gzip" in request.headers.getlist("content-encoding"):
        return gunzip(body, limit)
    return body


def gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body, decompressed no further than ``limit`` bytes."""
    inflate = zlib.decompressobj(wbits=31)
    try:
        found = inflate.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"the gzip body cannot be decompressed: {exc}") from None
    if len(found) > limit:
        raise too_large("the decompressed request body", limit)
    if not inflate.eof:
        raise InvalidInput("the gzip body is truncated")
    return found
