"""One exception type for every mistake a user can make.

The command line turns a :class:`MedkitError` into a one-line message and exit code 2; a
notebook shows the same message. Anything else that escapes is a bug in medkit.
"""
from __future__ import annotations


class MedkitError(Exception):
    """A problem with the user's input (path, file, option or data), stated in one line."""
