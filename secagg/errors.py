"""The exception hierarchy of secagg.

Two families tell whose fault a failure is (as h11 does):

* :class:`ConfigurationError` and :class:`UsageError` are *local*: the caller passed
  parameters that cannot work, or called an API out of order.
* :class:`ProtocolViolation` is *remote*: a named party sent something malformed,
  unauthenticated, out of round or malicious. It carries the offending party's id
  when it is known, so a protocol can exclude that party and go on.

:class:`ProtocolAbort` means the protocol cannot finish safely (for example fewer than
``t`` clients remain); it is raised instead of returning a wrong or unsafe result.
"""

from __future__ import annotations


class SecAggError(Exception):
    """Base class of every exception secagg raises on purpose."""


class ConfigurationError(SecAggError, ValueError):
    """Parameters that cannot work (bad threshold, bit width, sizes...)."""


class HeadroomError(ConfigurationError):
    """A fixed-point setting whose sum over the configured clients could wrap."""


class UsageError(SecAggError, RuntimeError):
    """A local API call made in a state that does not allow it."""


class ShareError(SecAggError, ValueError):
    """Secret shares that cannot be combined."""


class InsufficientSharesError(ShareError):
    """Fewer shares than the threshold."""


class IncompatibleSharesError(ShareError):
    """Shares of different fields, thresholds or sharings (foreign shares)."""


class DuplicateShareError(ShareError):
    """Two shares with the same x coordinate, or an x coordinate of zero."""


class ProtocolViolation(SecAggError):
    """A remote party sent something it must not have.

    ``party`` is the id of the offending sender when known, else ``None``.
    """

    def __init__(self, message: str, *, party: int | None = None) -> None:
        super().__init__(message)
        self.party = party


class DecodeError(ProtocolViolation, ValueError):
    """Bytes that do not decode to a well-formed message or value."""


class AuthenticationError(ProtocolViolation):
    """A ciphertext tag or a signature that does not verify."""


class MaliciousRequestError(ProtocolViolation):
    """A request whose answer would break privacy (e.g. both shares of one peer)."""


class ProtocolAbort(SecAggError):
    """The protocol cannot complete safely, e.g. fewer than ``t`` clients remain."""
