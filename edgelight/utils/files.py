"""Files written so that a reader never sees half of one, and output folders checked before long work."""

import contextlib
import json
import os
import tempfile
from pathlib import Path

from edgelight.errors import UsageError


class OutputPathError(UsageError):
    """An output path that cannot be written (a file where a folder should be, no permission)."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the whole new content, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def probe_folder(folder: Path) -> list[Path]:
    """Create ``folder`` if needed and check that a file can be written in it, before any long work.

    Returns the folders it created (so a caller that fails later can remove them); raises OutputPathError
    with the reason, leaving nothing behind.
    """
    folder = Path(folder)
    missing = [p for p in [folder, *folder.parents] if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".edgelight-probe-").close()
    except OSError as e:
        remove_empty(missing)
        reason = "it is a file" if folder.is_file() else e.strerror or str(e)
        raise OutputPathError(f"cannot write to '{folder}': {reason}") from None
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove the given folders, innermost first, where they are still empty."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: dict) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def content_digest(path: Path) -> tuple[int, str | None]:
    """(bytes, sha256) of a file, or of a directory artifact (.mlpackage: every file's relative name and content,
    in order); (0, None) for a path that holds no file."""
    import hashlib

    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
    digest = hashlib.sha256()
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return sum(f.stat().st_size for f in files), digest.hexdigest() if files else None
