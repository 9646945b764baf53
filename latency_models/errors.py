"""Errors of the cost package: user-fixable failures, reported by the CLI in one line with exit code 2."""


class CostModelError(ValueError):
    """A device profile, cost table or model file is unknown, missing or malformed; the message says the fix."""


class ModelLoadError(CostModelError):
    """A ``.tflite`` file is missing, truncated or not a LiteRT model."""
