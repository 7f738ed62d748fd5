"""User mistakes, reported as one line on stderr with exit code 2, never as a traceback; and a
trial that could not finish."""

USAGE_EXIT = 2
INTERRUPTED_EXIT = 130
INCOMPLETE_EXIT = 3  # trials still run elsewhere: the study is not finished


class UsageError(Exception):
    """A user mistake (bad key, value, path, URL); the message is the whole report."""


class TrialFailed(Exception):
    """The trial could not finish (infeasible architecture, diverging loss); message says why."""
