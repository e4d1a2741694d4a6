"""Entry-point helpers: user errors become one line on stderr, not a traceback."""
import errno
import sys

from .errors import CheckpointError, ConfigError, DatasetError, ExportError

# Exception types that describe a problem with the user's input rather than a bug. src.errors imports nothing, so
# reporting one never loads MindSpore.
USER_ERRORS = (ConfigError, DatasetError, CheckpointError, ExportError, FileNotFoundError, FloatingPointError)


# A full disk, a quota, a read-only or forbidden folder: the user's to fix, so one line, not a traceback.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def fail(message, code=2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run_main(main):
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # only the user-facing types are shortened; anything else keeps its traceback
        if isinstance(e, OSError) and e.errno in WRITE_ERRORS:
            text = e.strerror or str(e)
            fail(f"{text}: {e.filename}" if e.filename and str(e.filename) not in text else text)
        if isinstance(e, USER_ERRORS):
            fail(str(e))
        raise
