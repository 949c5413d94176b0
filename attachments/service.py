"""Attachments: uploads checked against their bytes, taken by one message, swept when unused.

Route -> this service -> `storage.attachments` (metadata rows) + `storage.objects`
(the bytes, local folder or S3). A row exists before its bytes are written, so
the sweeper also removes what a crash in the middle of an upload left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from attachments.filetypes import (
    DEFAULT_ALLOWED,
    HEAD_BYTES,
    claimed_type,
    family_of,
    matches,
    sanitise_filename,
)
from attachments.ports import Conversations
from base.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    NotSupported,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
)
from base.identity import Caller
from schemas.attachments import AttachmentInfo, PresignedUpload
from schemas.messages import Message
from schemas.settings import Settings
from storage.attachments import AttachmentRow, AttachmentStore, ClaimRefused
from storage.messages import now_ms
from storage.objects import ObjectStore, TooLarge, read_all

log = logging.getLogger("pitchey.attachments")

MESSAGE = "message"
EMAIL = "email"

# A message is a message, not an archive: ten files covers real use and bounds the claim.
MAX_PER_MESSAGE = 10
# Where a presigned URL writes: confirm copies the bytes to a key without this prefix. A
# PUT after confirm lands here and nothing reads it; a bucket lifecycle rule on the prefix
# removes such leftovers (docs/security.md).
UPLOAD_PREFIX = "upload-"
# The sweeper removes at most this many uploads per round, so one round stays short.
_SWEEP_BATCH = 200

# A sniffed family -> the type recorded when the client named none.
_CANONICAL = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "isobmff": "video/mp4",
    "text": "text/plain",
}


@dataclass(frozen=True, slots=True)
class Download:
    """Either a URL to redirect to, or a stream to serve with these headers."""

    row: AttachmentRow
    url: str | None
    stream: AsyncIterator[bytes] | None
    content_type: str
    disposition: str


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback in `filename`, the exact name in `filename*`."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_")
    fallback = fallback.replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def served_type(content_type: str) -> str:
    return f"{content_type}; charset=utf-8" if content_type.startswith("text/") else content_type


class Attachments:
    def __init__(
        self,
        *,
        settings: Settings,
        store: AttachmentStore,
        objects: dict[str, ObjectStore],
        messaging: Conversations,
    ) -> None:
        self.settings = settings
        self.store = store
        self.objects = objects
        self.messaging = messaging
        self.max_bytes = settings.attachment_max_bytes
        self.allowed = frozenset(settings.attachment_allowed_types or DEFAULT_ALLOWED)
        self._sweeper: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------

    # The buckets are opened and closed by `server.wiring`: the email worker reads the email
    # bucket after this service has stopped.

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="attachment-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass

    # ---- uploads -----------------------------------------------------------------

    async def upload(
        self,
        caller: Caller,
        *,
        kind: str,
        conversation_id: str | None,
        filename: str | None,
        declared_type: str | None,
        chunks: AsyncIterator[bytes],
    ) -> AttachmentInfo:
        """Stream one file into storage; its type is decided by its first bytes."""
        await self._may_upload(caller, kind, conversation_id)
        name = sanitise_filename(filename)
        claimed = claimed_type(declared_type, name)
        decided: list[str] = []

        def decide(head: bytes) -> None:
            decided.append(self._check_type(claimed, head))

        row = self._new_row(caller, kind, conversation_id, name, claimed or "")
        await self.store.create(row)
        try:
            stored = await self.objects[kind].put(
                row.object_key,
                _checked(chunks, decide),
                max_bytes=self.max_bytes,
                content_type=claimed or "application/octet-stream",
            )
        except TooLarge:
            await self._forget(row)
            raise PayloadTooLarge(f"the file is larger than {self.max_bytes} bytes") from None
        except BaseException:
            await asyncio.shield(self._forget(row))
            raise
        if stored.size == 0:
            await self._forget(row, with_object=True)
            raise Invalid("the file is empty")
        await self.store.mark_uploaded(row.id, stored.size, stored.sha256, decided[0])
        return AttachmentInfo(
            id=row.id,
            filename=name,
            content_type=decided[0],
            size=stored.size,
            sha256=stored.sha256,
        )

    def _check_type(self, claimed: str | None, head: bytes) -> str:
        if not head:
            raise Invalid("the file is empty")
        if claimed is None:
            family = family_of(head)
            claimed = _CANONICAL.get(family or "")
            if claimed is None:
                raise UnsupportedMediaType("the file's type could not be recognised")
        if claimed not in self.allowed:
            raise UnsupportedMediaType(f"{claimed} is not an allowed attachment type")
        if not matches(claimed, head):
            raise UnsupportedMediaType(f"the file's bytes are not {claimed}")
        return claimed

    async def _may_upload(self, caller: Caller, kind: str, conversation_id: str | None) -> None:
        if kind == MESSAGE:
            if not conversation_id:
                raise Invalid("conversationId is required (before the file in the form)")
            await self.messaging.require_member(caller.user_id, conversation_id)
        elif caller.role not in ("service", "admin"):
            raise Forbidden("email attachments are uploaded with a service token")

    def _new_row(
        self, caller: Caller, kind: str, conversation_id: str | None, name: str, ctype: str
    ) -> AttachmentRow:
        attachment_id = str(uuid.uuid4())
        return AttachmentRow(
            id=attachment_id,
            kind=kind,
            object_key=attachment_id,
            uploader_id=caller.user_id,
            conversation_id=conversation_id if kind == MESSAGE else None,
            filename=name,
            content_type=ctype,
            size=0,
            sha256=None,
            created_at=now_ms(),
            uploaded_at=None,
            claimed_at=None,
            message_id=None,
        )

    async def _forget(self, row: AttachmentRow, *, with_object: bool = False) -> None:
        try:
            if with_object:
                await self.objects[row.kind].delete(row.object_key)
            await self.store.delete_unclaimed(row.id)
        except Exception:
            # The sweeper removes it later.
            log.exception("could not remove failed upload %s", row.id)

    # ---- direct upload (S3) ----------------------------------------------------

    async def presign(
        self, caller: Caller, conversation_id: str, filename: str, content_type: str, size: int
    ) -> PresignedUpload:
        await self._may_upload(caller, MESSAGE, conversation_id)
        name = sanitise_filename(filename)
        claimed = claimed_type(content_type, name)
        if claimed is None or claimed not in self.allowed:
            raise UnsupportedMediaType(f"{claimed or content_type} is not an allowed type")
        if size > self.max_bytes:
            raise PayloadTooLarge(f"the file is larger than {self.max_bytes} bytes")
        row = self._new_row(caller, MESSAGE, conversation_id, name, claimed)
        # The URL writes to an upload key of its own; confirm copies the bytes away from
        # it, so a second PUT to the same URL can never change what was confirmed.
        row.object_key = f"{UPLOAD_PREFIX}{row.id}"
        ttl = self.settings.attachment_upload_url_ttl
        url = await self.objects[MESSAGE].presign_put(row.object_key, claimed, ttl)
        if url is None:
            raise NotSupported("direct upload needs STORAGE_BACKEND=s3; upload the file instead")
        await self.store.create(row)
        return PresignedUpload(
            id=row.id,
            url=url,
            method="PUT",
            headers={"Content-Type": claimed},
            expires_in=ttl,
        )

    async def confirm(self, caller: Caller, attachment_id: str) -> AttachmentInfo:
        """Check a direct upload's bytes (size, type, sha256) and make it attachable.

        The presigned URL stays writable until it expires, so nothing is checked where it
        writes: the bytes are first copied to a final key no URL can write (a fresh one
        per attempt, so two confirms racing never overwrite each other's copy), the copy
        is checked, and the row then points at it. Every download serves those bytes.
        """
        row = await self.store.get(attachment_id)
        if row is None or row.kind != MESSAGE or row.uploader_id != caller.user_id:
            raise NotFound("attachment not found")
        if row.uploaded_at is not None:
            return _info(row)
        objects = self.objects[MESSAGE]
        upload_key = row.object_key
        info = await objects.head(upload_key)
        if info is None:
            raise Conflict("the file has not been uploaded yet")
        if info.size > self.max_bytes:
            await self._forget(row, with_object=True)
            raise PayloadTooLarge(f"the file is larger than {self.max_bytes} bytes")
        final_key = f"{row.id}.{uuid.uuid4().hex}"
        await objects.copy(upload_key, final_key)
        try:
            checked = await self._check_copy(objects, row, final_key)
        except BaseException:
            await asyncio.shield(self._drop_object(final_key))
            raise
        if checked is None:
            # The copy changed size between head and copy (a second PUT): check again.
            await self._drop_object(final_key)
            raise Conflict("the file changed while it was being confirmed; confirm again")
        size, digest = checked
        if not await self.store.mark_uploaded(
            row.id, size, digest, row.content_type, object_key=final_key
        ):
            await self._drop_object(final_key)  # another confirm won; its copy is the one
        else:
            await self._drop_object(upload_key)
        row = await self.store.get(attachment_id) or row
        return _info(row)

    async def _check_copy(
        self, objects: ObjectStore, row: AttachmentRow, key: str
    ) -> tuple[int, str] | None:
        """Size and sha256 of the object at `key` after its type check; None when too large."""
        head = await read_all(objects.get(key, limit=HEAD_BYTES), HEAD_BYTES)
        try:
            self._check_type(row.content_type, head)
        except ServiceError:
            await self._forget(row, with_object=True)
            raise
        # Hash by streaming the object back: memory stays one chunk, whatever its size.
        digest = hashlib.sha256()
        size = 0
        async for chunk in objects.get(key):
            size += len(chunk)
            if size > self.max_bytes:
                return None
            digest.update(chunk)
        return size, digest.hexdigest()

    async def _drop_object(self, key: str) -> None:
        try:
            await self.objects[MESSAGE].delete(key)
        except Exception:
            log.exception("could not remove object %s", key)

    # ---- messages --------------------------------------------------------------

    async def send(
        self,
        caller: Caller,
        conversation_id: str,
        content: str,
        client_msg_id: str | None,
        attachment_ids: Sequence[str] | None,
    ) -> Message:
        """Messaging.send with uploads: taken before the message is stored, given back if not."""
        if not attachment_ids:
            return await self.messaging.send(caller, conversation_id, content, client_msg_id)
        ids = list(dict.fromkeys(attachment_ids))
        if len(ids) > MAX_PER_MESSAGE:
            raise Invalid(f"at most {MAX_PER_MESSAGE} attachments per message")
        await self.messaging.require_member(caller.user_id, conversation_id)
        # A retried send (same clientMsgId) takes the same uploads again and gets its first message.
        ref = f"m:{client_msg_id}" if client_msg_id else f"r:{uuid.uuid4()}"
        try:
            rows = await self.store.claim(
                ids,
                uploader_id=caller.user_id,
                kind=MESSAGE,
                conversation_id=conversation_id,
                ref=ref,
            )
        except ClaimRefused as exc:
            raise _claim_error(exc) from None
        try:
            message = await self.messaging.send(
                caller, conversation_id, content, client_msg_id, metadata(rows)
            )
        except BaseException:
            await asyncio.shield(self.store.release(ids, ref))
            raise
        await self.store.set_message(ids, message.id)
        return message

    # ---- downloads -------------------------------------------------------------

    async def download(self, caller: Caller, attachment_id: str) -> Download:
        row = await self.store.get(attachment_id)
        if row is None or row.kind != MESSAGE or row.uploaded_at is None:
            raise NotFound("attachment not found")
        assert row.conversation_id is not None
        members = await self.messaging.members(row.conversation_id)
        if caller.user_id not in members:
            raise NotFound("attachment not found")
        objects = self.objects[MESSAGE]
        disposition = content_disposition(row.filename)
        ctype = served_type(row.content_type)
        url = await objects.presign_get(
            row.object_key,
            content_type=ctype,
            disposition=disposition,
            expires=self.settings.attachment_url_ttl,
        )
        stream = None if url is not None else objects.get(row.object_key)
        return Download(
            row=row, url=url, stream=stream, content_type=ctype, disposition=disposition
        )

    # ---- email -----------------------------------------------------------------

    async def take_for_email(
        self, caller: Caller, ids: Sequence[str], ref: str
    ) -> list[AttachmentRow]:
        """Take uploaded email attachments for one email (all or none)."""
        try:
            return await self.store.claim(
                list(dict.fromkeys(ids)),
                uploader_id=caller.user_id,
                kind=EMAIL,
                conversation_id=None,
                ref=ref,
            )
        except ClaimRefused as exc:
            raise _claim_error(exc) from None

    async def release_for_email(self, ids: Sequence[str], ref: str) -> None:
        """Give back what `take_for_email` took with `ref` when the email was not accepted."""
        await self.store.release(list(dict.fromkeys(ids)), ref)

    async def read(self, row: AttachmentRow) -> bytes:
        """A whole (email) attachment in memory; callers bound the total first."""
        return await read_all(self.objects[row.kind].get(row.object_key))

    async def row(self, attachment_id: str) -> AttachmentRow | None:
        return await self.store.get(attachment_id)

    # ---- cleanup ---------------------------------------------------------------

    async def sweep(self) -> int:
        """Remove uploads no message took within ATTACHMENT_UNATTACHED_TTL; return how many."""
        cutoff = now_ms() - int(self.settings.attachment_unattached_ttl * 1000)
        removed = 0
        for row in await self.store.unclaimed_before(cutoff, _SWEEP_BATCH):
            try:
                # Row first: once it is gone nobody can attach it, then the bytes can go.
                if await self.store.delete_unclaimed(row.id):
                    await self.objects[row.kind].delete(row.object_key)
                    removed += 1
            except Exception:
                log.exception("could not remove unattached upload %s", row.id)
        return removed

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.attachment_sweep_interval)
            started = time.monotonic()
            try:
                removed = await self.sweep()
            except Exception:
                log.exception("attachment sweep failed")
                continue
            if removed:
                log.info(
                    "removed %d unattached uploads in %.2fs", removed, time.monotonic() - started
                )


async def _checked(
    chunks: AsyncIterator[bytes], decide: Callable[[bytes], None]
) -> AsyncIterator[bytes]:
    """Pass the stream on, but only after its first HEAD_BYTES have passed `decide`."""
    head = bytearray()
    async for chunk in chunks:
        head += chunk
        if len(head) >= HEAD_BYTES:
            break
    decide(bytes(head[:HEAD_BYTES]))
    if head:
        yield bytes(head)
    async for chunk in chunks:
        yield chunk


def _claim_error(exc: ClaimRefused) -> ServiceError:
    if exc.reason == "not_found":
        return NotFound(f"attachment {exc.attachment_id} not found")
    if exc.reason == "not_uploaded":
        return Conflict(f"attachment {exc.attachment_id} is not uploaded yet; confirm it first")
    return Conflict(f"attachment {exc.attachment_id} is already attached to a message")


def _info(row: AttachmentRow) -> AttachmentInfo:
    return AttachmentInfo(
        id=row.id,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256 or "",
    )


def metadata(rows: Sequence[AttachmentRow]) -> list[dict[str, object]]:
    """What a message shows of its attachments."""
    return [
        {"id": r.id, "filename": r.filename, "contentType": r.content_type, "size": r.size}
        for r in rows
    ]


class EmailBucket:
    """What the email worker reads: taken email uploads, by id, whole."""

    def __init__(self, store: AttachmentStore, objects: ObjectStore) -> None:
        self.store = store
        self.objects = objects

    async def read(self, attachment_id: str) -> tuple[AttachmentRow, bytes] | None:
        """The upload and its bytes; None when no taken email upload has this id (or its
        bytes are gone), which no retry can mend."""
        row = await self.store.get(attachment_id)
        if row is None or row.kind != EMAIL or row.claimed_at is None:
            return None
        if await self.objects.head(row.object_key) is None:
            return None
        return row, await read_all(self.objects.get(row.object_key))
