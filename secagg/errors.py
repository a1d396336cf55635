"""The exception hierarchy of secagg.

Two families tell whose fault a failure is (as h11 does):

* :class:`ConfigurationError` and :class:`UsageError` are *local*: the caller passed
  parameters that cannot work, or called an API out of order.
* :class:`ProtocolViolation` is *remote*: a named party sent something malformed,
  unauthenticated, out of round or malicious. It carries the offending party's id
  when it is known, so a protocol can exclude that party and go on.

:class:`ProtocolAbort` means the protocol cannot finish safely (for example fewer than
``t`` clients remain); it is raised instead of returning a wrong or unsafe result.

:class:`ExclusionReason` types why a server set a party aside (as fcp's
``ClientDropReason``): every server records its exclusions and faults with one of them
(:mod:`secagg.protocols.faults`).
"""

from __future__ import annotations

import enum


class SecAggError(Exception):
    """Base class of every exception secagg raises on purpose."""


class ConfigurationError(SecAggError, ValueError):
    """Parameters that cannot work (bad threshold, bit width, sizes...)."""


class HeadroomError(ConfigurationError):
    """A fixed-point setting whose sum over the configured clients could wrap."""


class UsageError(SecAggError, RuntimeError):
    """A local API call made in a state that does not allow it."""


class SecretSerializationError(UsageError, TypeError):
    """An object holding secret material was asked to be pickled or copied.

    A :class:`TypeError` like the one ``pickle`` raises for any unpicklable object, and a
    :class:`UsageError`; the text names the class and its safe, explicit alternative
    (:mod:`secagg.secret`).
    """


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


class ExclusionReason(enum.Enum):
    """Why a server left a client out of the sum, or recorded a fault against a party.

    The first group excludes a client (``AggregationResult.excluded``); the second is
    misbehaviour the server contained (``AggregationResult.faults``), which may or may not
    also exclude the sender. Values are short, stable texts.
    """

    # -- a client is not in the sum
    DROPPED = "dropped"
    """It did not answer before its round closed."""
    BAD_MESSAGE = "bad message"
    """It sent a message whose content is invalid, so its answer was removed."""
    FEW_LIVE_NEIGHBOURS = "fewer than t live neighbours"
    """SecAgg+: its neighbourhood fell below t live holders, so its secrets cannot be
    reconstructed; it is pruned like a dropout."""
    NOT_A_SURVIVOR = "not in the survivor set"
    """It was never part of the final survivor set (catch-all for configured clients)."""
    NO_VALID_INPUT = "no valid input"
    """Threshold HE: no valid encrypted input arrived from it."""

    # -- a fault recorded against a party
    UNKNOWN_SENDER = "message from a party outside the session"
    MISROUTED = "message of another session or recipient"
    OUT_OF_ROUND = "out-of-round message"
    DUPLICATE = "duplicate message"
    UNDECODABLE = "undecodable message"
    INVALID_CONTENT = "invalid content"
    BAD_SIGNATURE = "bad signature"
    BAD_SHARE = "revealed share off the polynomial"
    MALFORMED_SHARE = "malformed revealed share"
    UNREADABLE_BUNDLE = "share bundle its holder could not open"
    BAD_KEY_PROOF = "public key without a valid proof of possession"
    """Bonawitz: an advertised key whose key proof does not verify (it may not hold it)."""
    FALSE_COMPLAINT = "complaint that does not hold"
    """Bonawitz: a complaint about boxes that open, or whose proof does not verify."""
    BAD_CHECK = "check value its share does not give"
    """Bonawitz: ShareCheck values (or a revealed box key) that its own box contradicts."""
    INCONSISTENT_DEALING = "shares off one polynomial"
    """Bonawitz: a dealer whose dealt shares (read from the boxes it sealed) are not all
    on one polynomial of degree < t."""
    WRONG_COMMITMENT = "self-mask commitment that does not match its dealt seed"
    WRONG_DEALT_KEY = "dealt mask key that does not match its advertised key"
    BAD_DECRYPTION = "rejected decryption share"
    DISAGREEMENT = "disagreeing decryption"
    MEMBER_DROPPED = "committee member dropped"
