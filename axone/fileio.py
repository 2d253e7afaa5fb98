"""File primitives under everything that reads or writes files (models, callbacks, datasets).

One error type for a file that is not what it claims to be, the check that a path names a
regular file before it is opened, and atomic writes (a temporary file in the same folder,
flushed, then renamed over the target).  Nothing here imports the rest of axone.
"""
import os
import stat

__all__ = ["FileFormatError", "check_regular_file"]


class FileFormatError(ValueError):
    """A file that is truncated, corrupted, of another format or inconsistent with itself.

    Every reader of axone raises this (a ``ValueError``) for a malformed file, with the path and
    what is wrong; ``path`` holds the file's path.
    """

    def __init__(self, path, message):
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path!r}: {message}" if self.path is not None else message)


def check_regular_file(path, what="file"):
    """Raise unless ``path`` names an existing regular file (not a folder, FIFO or device).

    Returns the path as a string.  ``FileNotFoundError`` when it does not exist, otherwise
    ``FileFormatError``.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such {what}: {path!r}") from None
    except OSError as e:
        raise FileFormatError(path, f"cannot be read as a {what} ({e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileFormatError(path, f"is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise FileFormatError(path, f"is not a regular file (a FIFO, socket or device), "
                                    f"so it is not read as a {what}")
    return path
