"""The library's own error type.

Every failure a user can cause (bad data, bad flags, a corrupt checkpoint) is raised as `MinivaeError` with a
one-line message saying what was wrong and what was expected; the CLI prints it and exits with status 2.
"""


class MinivaeError(Exception):
    """A user-facing, one-line error: what was wrong and what was expected."""
