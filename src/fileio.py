"""Writing files so that a kill or a full disk never leaves a truncated file under its final name.

Write to a temporary name in the same folder, fsync it, rename it over the final name, fsync the folder.
"""
import contextlib
import json
import os


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder):
    """Make a rename in `folder` durable; a no-op where folders cannot be opened (some filesystems)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; on success it replaces `path`, on any error it is removed.

    The temporary name keeps the final extension (MindSpore appends `.ckpt` to a checkpoint name without it).
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(folder, f".{stem}.tmp-{os.getpid()}{ext}")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(folder)
    except OSError as e:  # a full disk or a read-only folder: name the file the user will look for
        if e.errno is None or path in str(e):
            raise
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}; the previous file, if any, is "
                               "unchanged") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path, doc, indent=None):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=indent, default=float)
    return path


def read_json(path, what="JSON file", error=None):
    """The parsed JSON of `path`; a missing, unreadable or malformed file raises `error` (a user-facing type, by
    default FileNotFoundError / ValueError) with one line naming it, and the line and column of a syntax error."""
    from .errors import DatasetError
    error = error or DatasetError
    if os.path.isdir(path):
        raise error(f"{path} is a folder; expected a {what}")
    if not os.path.isfile(path):
        raise error(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise error(f"{path}:{e.lineno}:{e.colno}: not a valid {what} ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read the {what} {path}: {getattr(e, 'strerror', None) or e}") from None
