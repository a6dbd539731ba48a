"""The base class of every error scns raises for the user to act on.

Each layer keeps its own error class (``ConfigError``, ``DatasetError``, ``CheckpointError``, ...),
derived from :class:`ScnsError` and, where callers already catch it, from a built-in class
(``ValueError``, ``RuntimeError``, ``KeyError``). The message says what is wrong and how to fix it,
so the command line prints it without a traceback: ``except ScnsError`` there catches them all.

This module imports nothing, so every layer may use it.
"""

from __future__ import annotations


class ScnsError(Exception):
    """An error whose message tells the user what is wrong and what to do.

    ``exit_code`` is the status the command line exits with when it stops on this error: 2 for
    bad input (a config value, a missing file, an unknown name), 1 for a failure of the run itself.
    """

    exit_code: int = 2
