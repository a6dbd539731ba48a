"""The one exception type the data layer raises for bad or missing files."""

from __future__ import annotations

from scns.errors import ScnsError


class DatasetError(ScnsError, RuntimeError):
    """A dataset could not be read; the message names the file, what was expected and the fix."""
