"""Errors raised for wrong configuration or input."""


class MisconfigurationException(Exception):
    """A module, datamodule or Trainer setting cannot work as given; the message says the fix."""
