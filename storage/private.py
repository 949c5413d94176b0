"""Files only this service's user may read: the database, the development secret, uploads.

Created 0600 inside folders created 0700, whatever the umask. Folders that already
exist are left as they are: DATA_DIR may be a shared parent the operator chose.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create `path` and every missing parent 0700."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
            # mkdir's mode passes through the umask; chmod does not.
            folder.chmod(DIR_MODE)


def create_private(path: Path) -> int:
    """A new file opened for writing, 0600 from its first moment (fails if it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, data: bytes) -> None:
    with os.fdopen(create_private(path), "wb") as handle:
        handle.write(data)


def touch_private(path: Path) -> None:
    """Make sure `path` exists 0600 (an existing file is tightened, never emptied)."""
    try:
        os.close(create_private(path))
    except FileExistsError:
        with contextlib.suppress(PermissionError):
            path.chmod(FILE_MODE)
