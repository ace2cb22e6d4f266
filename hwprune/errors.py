"""The one exception type the library raises for bad input.

The CLI turns it into a one-line message and exit code 2; library callers can catch it.
Every message says what was wrong and how to fix it.
"""


class HwpruneError(Exception):
    """Bad input or an unmet precondition, with a message naming the problem and the fix."""


class MismatchError(HwpruneError):
    """A level of the bit-exactness ladder disagreed with the golden interpreter."""
