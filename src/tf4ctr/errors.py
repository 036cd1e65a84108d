"""Errors that mean "the user gave us something wrong".

The CLI turns a :class:`UserError` into one line on stderr and exit code 2;
anything else is a bug in tf4ctr and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: a file, a config key, a value.

    The message is one line that names where the problem is (file and line, or
    config key) and what was expected.
    """


class ConfigError(UserError):
    """A config file or override is invalid."""


class DataError(UserError):
    """A data file is missing, malformed or inconsistent with its config."""


def first_message_line(message: str, empty: str = "unknown error") -> str:
    """The first line of an underlying error's message, for a one-line error of ours."""
    return message.strip().splitlines()[0] if message.strip() else empty
