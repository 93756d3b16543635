"""A host's configuration file, changed the way a careful person would change it by hand.

* A link (a dotfiles set-up) stays a link: its target is what is written.
* A file that holds a key is readable by its owner only, and so is every backup.
* The old file is kept as a backup under a name no other file has, created exclusively, so two
  runs in one second keep both originals and a link planted at the backup's name is never
  followed.
* A read-only file is refused, as is a file the host changed while this ran: nothing is lost.
* The new text goes to a temporary file beside the target and is moved into place whole.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from pathlib import Path

OWNER_ONLY = 0o600


class HostFileError(Exception):
    """Why the file was left as it is, in words for the person."""


def target_of(path: Path) -> Path:
    """The file to write: ``path`` itself, or where its chain of links ends."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def read_text(path: Path) -> str | None:
    """The file's text; None when there is no file (a dangling link counts as none)."""
    try:
        return target_of(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise HostFileError(f"{path} cannot be read ({exc}); nothing was changed") from exc


def write(path: Path, text: str, old: str | None, *, secret: bool) -> Path | None:
    """Put ``text`` in place of ``old`` at ``path`` (through a link); the backup's path, if any.

    ``secret``: the text holds a key, so the file is made owner-only.
    """
    target = target_of(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HostFileError(f"the folder {target.parent} cannot be made ({exc.strerror or exc})") from exc
    mode = OWNER_ONLY
    if old is not None:
        current = target.stat().st_mode
        if not current & stat.S_IWUSR:
            raise HostFileError(
                f"{target} is read-only, so it was left as it is. Make it writable "
                f"(chmod u+w {target}) and run this again, or add the entry by hand"
            )
        mode = stat.S_IMODE(current) & (~0o077 if secret else 0o7777)
    backup = _backup(target) if old is not None else None
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise HostFileError(f"{target.parent} cannot be written ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, mode)
        _unchanged(target, old)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return backup


def _unchanged(target: Path, old: str | None) -> None:
    """Refuse to write over an edit the host made since ``old`` was read."""
    if read_text(target) != old:
        raise HostFileError(
            f"{target} changed while this ran (the host may have saved it), so it was left as the "
            "host wrote it; run this again"
        )


def _backup(target: Path) -> Path:
    """Keep ``target``'s bytes under a new name beside it, owner-only, never over another file."""
    old = target.read_bytes()
    stem = f"{target.name}.backup-{time.strftime('%Y%m%d-%H%M%S')}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for n in range(1, 1000):
        candidate = target.with_name(stem if n == 1 else f"{stem}-{n}")
        try:
            fd = os.open(candidate, flags, OWNER_ONLY)
        except FileExistsError:
            continue
        except OSError as exc:
            raise HostFileError(f"{target.parent} cannot be written ({exc.strerror or exc})") from exc
        with os.fdopen(fd, "wb") as out:
            out.write(old)
        with contextlib.suppress(OSError):
            os.chmod(candidate, OWNER_ONLY)  # whatever the umask made of it
        return candidate
    raise HostFileError(f"too many backups of {target.name} in {target.parent}; remove some")
