"""S3-compatible object storage (AWS S3, Cloudflare R2, MinIO, moto) through aiobotocore.

Large puts use a multipart upload so memory holds one part, not the file: the
stream is cut into PART_BYTES pieces, each sent as it fills. A put smaller than
one part is a single PutObject.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from schemas.settings import Settings
from storage.objects import READ_CHUNK, Meter, ObjectInfo, Stored

# S3's smallest allowed part (except the last) is 5 MiB; the smallest part keeps the
# per-upload buffer smallest. 10,000 parts * 5 MiB = 48 GiB, far above any attachment limit.
PART_BYTES = 5 * 1024 * 1024


class S3Objects:
    def __init__(self, settings: Settings, bucket: str) -> None:
        self.bucket = bucket
        self._settings = settings
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        s = self._settings
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3",
                region_name=s.s3_region,
                endpoint_url=s.s3_endpoint_url or None,
                aws_access_key_id=s.s3_access_key or None,
                aws_secret_access_key=s.s3_secret_key or None,
                # Path-style works with every S3-compatible server (MinIO, moto, R2).
                config=Config(
                    s3={"addressing_style": "path"},
                    signature_version="s3v4",
                    connect_timeout=5,
                    read_timeout=30,
                ),
            )
        )

    async def stop(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int, content_type: str
    ) -> Stored:
        meter = Meter(max_bytes)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                meter.add(chunk)
                buffer += chunk
                if len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        created = await self._client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type
                        )
                        upload_id = created["UploadId"]
                    await self._upload_part(key, upload_id, parts, bytes(buffer))
                    buffer.clear()
            if upload_id is None:
                await self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=bytes(buffer), ContentType=content_type
                )
            else:
                if buffer:
                    await self._upload_part(key, upload_id, parts, bytes(buffer))
                    buffer.clear()
                await self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(self._abort(key, upload_id))
            raise
        return meter.stored()

    async def _upload_part(
        self, key: str, upload_id: str, parts: list[dict[str, Any]], body: bytes
    ) -> None:
        number = len(parts) + 1
        answer = await self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        except ClientError:
            # A lifecycle rule for stale multipart uploads is the backstop (docs/operations.md).
            pass

    async def get(self, key: str, *, limit: int | None = None) -> AsyncIterator[bytes]:
        extra = {"Range": f"bytes=0-{limit - 1}"} if limit else {}
        answer = await self._client.get_object(Bucket=self.bucket, Key=key, **extra)
        async with answer["Body"] as body:
            while True:
                chunk = await body.read(READ_CHUNK)
                if not chunk:
                    return
                yield chunk

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise
        return ObjectInfo(size=int(answer["ContentLength"]))

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=key)

    async def copy(self, source: str, target: str) -> None:
        # Server-side: the bytes never pass through us. CopyObject takes up to 5 GiB,
        # far above any attachment limit.
        await self._client.copy_object(
            Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}
        )

    async def presign_put(self, key: str, content_type: str, expires: int) -> str | None:
        url: str = await self._client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=expires,
        )
        return url

    async def presign_get(
        self, key: str, *, content_type: str, disposition: str, expires: int
    ) -> str | None:
        url: str = await self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
            },
            ExpiresIn=expires,
        )
        return url
