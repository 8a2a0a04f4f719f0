"""One-line error messages shared by the readers of user files.

Every reader error is a `ValueError` whose message is a single line starting
with the offending file's path, so a bad file in a large folder is easy to
find.
"""

import os


def first_line(e: BaseException) -> str:
  """First line of an exception message (messages must stay one line)."""
  lines = str(e).strip().splitlines()
  return lines[0] if lines else "no message"


def check_file(path: str) -> None:
  """Raises ValueError naming `path` if it is missing or empty."""
  if not os.path.isfile(path):
    raise ValueError(f"{path}: file not found")
  if os.path.getsize(path) == 0:
    raise ValueError(f"{path}: empty file")
