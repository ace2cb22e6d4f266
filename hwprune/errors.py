"""The one exception type the library raises for bad input.

The CLI turns it into a one-line message and exit code 2; library callers can catch it.
Every message says what was wrong and how to fix it.
"""


class HwpruneError(Exception):
    """Bad input or an unmet precondition, with a message naming the problem and the fix."""


class MismatchError(HwpruneError):
    """A level of the bit-exactness ladder disagreed with the golden interpreter; ``report``
    is the ladder's report (every level's verdict) when there is one."""

    def __init__(self, message: str, report=None) -> None:
        super().__init__(message)
        self.report = report
