"""One error hierarchy for the whole project.

Every message says what is wrong *and* what to do about it; the CLI prints
the message as one line and exits with status 2.
"""


class LandscapeError(Exception):
    """Base class: a user-facing problem with a message that says how to fix it."""


class SpecError(LandscapeError):
    """The job spec is invalid (bad field, bad range, wrong kind)."""


class CheckpointError(LandscapeError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


class DataError(LandscapeError):
    """The data set cannot be built or does not fit the model."""


class ResultError(LandscapeError):
    """A result store is missing, incomplete, or holds a different scan."""


class ClusterError(LandscapeError):
    """Ray cannot place or run the work (resources, dead actors, poison tiles)."""


class Terminated(BaseException):
    """The process got SIGTERM (`landscape stop`, `ray job stop`, an evicted pod): end like Ctrl-C.

    A BaseException, as KeyboardInterrupt is: `except Exception` must not swallow it.
    """
