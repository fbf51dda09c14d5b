"""Errors raised for wrong configuration or input, and the signal that ends a fit early."""


class MisconfigurationException(Exception):
    """A module, datamodule or Trainer setting cannot work as given; the message says the fix."""


class FitEnded(Exception):
    """Raised by a callback to end the running fit at once, as a success: the runner skips the
    ``on_exception`` hooks, runs the teardown hooks and returns normally (the tuners end their fit
    this way once they have searched)."""
