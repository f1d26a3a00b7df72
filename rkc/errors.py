"""User-facing errors.

`RkcError` marks a problem with the user's input (a malformed model, an unsupported
op, a wrong shape, bad IR text): the command-line tools print its one-line message and
exit with code 2. Any other exception is an internal bug and keeps its traceback.
"""


class RkcError(Exception):
    """A problem with the user's input; the message names where and what is wrong."""

    exit_code = 2
