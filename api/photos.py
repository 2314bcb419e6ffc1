"""Photos from the scene (the field page's uploads), one file each in the state folder.

A photo is JPEG, PNG or WebP, says so in its Content-Type and in its first bytes, and is no
larger than the store's limit; anything else is refused before a byte is written
(`PhotoTooLargeError`: 413, `NotAPhotoError`: 415). It is written once, under a random name
nobody chooses (``ph-<32 hex>.<ext>``), in a folder per incident, readable by the platform's
user only (0600 files, 0700 folders), and fsynced before its name goes on the timeline.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from alerts.errors import UnknownIncidentError

# media type -> (file extension, how such a file starts)
PHOTO_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "image/jpeg": (".jpg", (b"\xff\xd8\xff",)),
    "image/png": (".png", (b"\x89PNG\r\n\x1a\n",)),
    "image/webp": (".webp", (b"RIFF",)),  # then 4 bytes of size, then b"WEBP"
}
MEDIA_TYPES = {ext: media for media, (ext, _) in PHOTO_TYPES.items()}
_NAME = re.compile(r"ph-[0-9a-f]{32}\.(jpg|png|webp)")
_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # an incident id (`stable_id`)


class PhotoRefusedError(ValueError):
    """A photo that is not stored."""


class PhotoTooLargeError(PhotoRefusedError):
    """Larger than the store's limit."""


class NotAPhotoError(PhotoRefusedError):
    """Not JPEG, PNG or WebP, by its Content-Type or by its bytes."""


def photo_type(content_type: str) -> str:
    """The media type of a Content-Type header we keep photos of (NotAPhotoError otherwise)."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in PHOTO_TYPES:
        raise NotAPhotoError(
            f"send image/jpeg, image/png or image/webp, not {media_type or 'no type'!r}")
    return media_type


def _is_photo(data: bytes, media_type: str) -> bool:
    _, starts = PHOTO_TYPES[media_type]
    if not data.startswith(starts):
        return False
    return media_type != "image/webp" or data[8:12] == b"WEBP"


@dataclass(frozen=True)
class PhotoStore:
    folder: Path
    max_bytes: int

    def check(self, data: bytes, content_type: str) -> str:
        """The media type of `data` if it may be stored (PhotoRefusedError otherwise)."""
        media_type = photo_type(content_type)
        if len(data) > self.max_bytes:
            raise PhotoTooLargeError(
                f"the photo is larger than {self.max_bytes} bytes; send a smaller one")
        if not _is_photo(data, media_type):
            raise NotAPhotoError(f"the body is not a {media_type} image")
        return media_type

    def save(self, incident_id: str, data: bytes, content_type: str) -> str:
        """Store the photo (blocking; call it off the event loop); its new name."""
        media_type = self.check(data, content_type)
        folder = self._folder_of(incident_id)
        if folder is None:
            raise UnknownIncidentError(incident_id)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"ph-{secrets.token_hex(16)}{PHOTO_TYPES[media_type][0]}"
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        dir_fd = os.open(folder, os.O_RDONLY)  # the new entry in the folder survives a crash too
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return name

    def find(self, incident_id: str, name: str) -> tuple[Path, str] | None:
        """The file of photo `name` of the incident and its media type; None if there is none."""
        folder = self._folder_of(incident_id)
        if folder is None or not _NAME.fullmatch(name):
            return None
        path = folder / name
        if not path.is_file():
            return None
        return path, MEDIA_TYPES[path.suffix]

    def _folder_of(self, incident_id: str) -> Path | None:
        """The incident's folder; None for an id that could not be one (nor a safe path)."""
        return self.folder / incident_id if _FOLDER.fullmatch(incident_id) else None
