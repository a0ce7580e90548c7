"""Exceptions that mean "the user asked for something we cannot do".

The CLI turns these into one line on stderr and exit status 2; everything else is a bug.
"""


class UserError(Exception):
    """Bad input from the user: an unknown name, a bad size, an unreadable file."""
