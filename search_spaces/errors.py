"""The error raised for invalid model specs and search spaces (user input, so messages say how to fix it)."""


class SpecError(ValueError):
    """A model spec, search-space rule or candidate is invalid; the message names the problem and the fix."""
