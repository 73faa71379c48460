"""The state folder is private: passwords, logs and PID files are readable by their owner only.

``secrets.env`` and Airflow's ``passwords.json`` hold every password of the stack, and logs can
quote connection errors. The launcher runs with umask 077, so what it and its services create
is private from the start, and on every start it re-checks what an older version, a restore or a
hand edit may have left readable: a file it owns is made private again (with a warning), a file
someone else owns is refused, because someone else could have written it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

from moonwatch.errors import StackError

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
# Folders keep their x bits for others: under root, PostgreSQL runs as `postgres` and must
# traverse the home folder to reach its data folder. Nobody else may list or write them.
_LOOSE_DIR_BITS = 0o066
_LOOSE_FILE_BITS = 0o077


def use_private_umask() -> None:
    """Every file the launcher and its services create from now on is private (0600/0700)."""
    os.umask(PRIVATE_UMASK)


def ensure_private(path: Path, what: str) -> bool:
    """Make ``path`` readable by its owner only; True if it had to be fixed.

    Raises when the file belongs to another account: its content cannot be trusted.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise StackError(
            f"{path} ({what}) is a symbolic link; the launcher writes secrets only to a real "
            "file it owns. Remove the link and run the command again."
        )
    if info.st_uid != os.geteuid():
        raise StackError(
            f"{path} ({what}) belongs to uid {info.st_uid}, not to you (uid {os.geteuid()}): "
            "another account could have written it. Check it, then `chown` it to yourself, or "
            "delete it so a new one is made."
        )
    loose = _LOOSE_DIR_BITS if stat.S_ISDIR(info.st_mode) else _LOOSE_FILE_BITS
    mode = stat.S_IMODE(info.st_mode)
    if not mode & loose:
        return False
    path.chmod(mode & ~loose)
    logger.warning(
        "%s (%s) was mode %04o, open to other users; it is now %04o. If anyone else may have "
        "read it, treat the secrets in it as exposed and change them.",
        path,
        what,
        mode,
        mode & ~loose,
    )
    return True


def make_private_tree(root: Path, what: str) -> list[Path]:
    """``ensure_private`` on ``root`` and everything under it that this account owns."""
    fixed: list[Path] = []
    if not root.exists():
        return fixed
    for folder, dirs, files in os.walk(root):
        for path in [Path(folder)] + [Path(folder) / name for name in dirs + files]:
            try:
                owner = path.lstat().st_uid
            except FileNotFoundError:
                continue  # a log rotated away while we walked
            if owner == os.geteuid() and not path.is_symlink() and ensure_private(path, what):
                fixed.append(path)
        dirs[:] = [d for d in dirs if (Path(folder) / d).lstat().st_uid == os.geteuid()]
    return fixed


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file that is 0600 from its first byte (never briefly readable)."""
    ensure_private(path, path.name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


# Each service's own log (scheduler, api-server, broker...) is written through an O_APPEND file
# descriptor the launcher opened, so it can be truncated in place and the service's next write
# lands at the new end: the "copytruncate" of logrotate, with one previous part kept. Airflow's
# task logs are the maintenance DAG's job; these are the launcher's.
SERVICE_LOG_MAX_BYTES = 20 * 1024 * 1024


def cap_service_logs(log_dir: Path, max_bytes: int = SERVICE_LOG_MAX_BYTES) -> list[Path]:
    """Move each ``*.log`` in ``log_dir`` over ``max_bytes`` to ``<name>.log.1`` (replacing the
    previous part) and empty it in place; returns the logs capped. A service keeps at most about
    twice ``max_bytes`` on disk, however long it runs."""
    capped = []
    for path in sorted(log_dir.glob("*.log")):
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size <= max_bytes:
                continue
            previous = path.with_name(path.name + ".1")
            shutil.copyfile(path, previous)
            os.truncate(path, 0)
        except OSError as e:  # a vanished or unreadable log is no reason to stop supervising
            logger.warning("could not cap %s: %s", path.name, e)
            continue
        capped.append(path)
    return capped
