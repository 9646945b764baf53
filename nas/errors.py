"""The project's error hierarchy: domain failures that the CLI reports in one line with exit code 2."""

from latency_models.errors import CostModelError
from search_spaces.errors import SpecError


class NasError(Exception):
    """Base class for failures a user can fix; the message says how."""


class DataError(NasError):
    """A dataset is unknown, missing or malformed."""


class ConfigError(NasError):
    """A flag or option is invalid or contradicts an existing study."""


class TrialFailed(NasError):
    """One trial cannot finish (fine-tuning diverged, the candidate does not fit in memory): the trial is
    recorded as failed with this reason, and the study goes on."""


USER_ERRORS = (NasError, SpecError, CostModelError)
