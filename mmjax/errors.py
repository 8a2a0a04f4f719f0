"""Errors that are the user's to fix (bad config, file or workdir).

`launch.py` prints these as one line, without a traceback, and exits non-zero.
"""


class UserError(ValueError):
  """A problem with the user's input; the message names the key/file/path."""
