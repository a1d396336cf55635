"""Every class whose instances can hold secret material refuses pickling and copying.

Issue 15.3: an outside review pickled the Paillier private key, threshold key shares, Shamir
shares, the Bonawitz client (its input when fresh, its peers' shares after masking) and the
threshold-HE client, secrets included. The rule is now one mechanism,
:class:`secagg.secret.SecretHolder`, and this module FINDS the classes it must cover, so that
a new one cannot slip through.

Theory of operation (the discovery). Every module of ``secagg`` is imported (every optional
extra is installed in the test environment: an import failure fails the test) and every
class it defines is read: its own attributes (``__slots__``, class annotations and dataclass
fields, and every ``self.x = ...`` / ``object.__setattr__(self, "x", ...)`` in its methods,
found in its source, typed by the annotation or by the annotated parameter assigned), its
own method names and its own docstring. A class holds secrets when one of these signals
fires:

* its name says so (``KeyShare``, ``Share``, ``RandomnessPool``: a secret word, no public
  word, see :data:`SECRET_WORDS` and :data:`PUBLIC_WORDS`);
* an attribute's name says so (``_self_seed``, ``cipher_key``, ``_input``, ``_encryptor``)
  and its type is not itself a secret holder (an attribute that holds a SecretHolder, e.g.
  ``identity: SigningKey``, is protected transitively: pickling or copying the container
  reaches the holder's refusal; :func:`test_containers_of_holders_refuse_too` shows it);
* an attribute is typed as raw key material of a library (``X25519PrivateKey``,
  ``Ed25519PrivateKey``, a ``CipherContext``), whatever its name;
* it has a method that needs a secret (``decrypt``, ``sign``, ``exchange``, a name with
  ``private`` or ``secret``);
* its docstring calls what it holds secret (not "no secret").

Each such class must be a SecretHolder whose refusing hooks are the mixin's own
(:func:`secagg.secret.refuses_serialization`), or appear in one of the commented
allowlists below. The allowlists must stay current (every entry exists, fires a signal and
is not a holder), and planted classes show that each signal catches a new class.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import enum
import importlib
import inspect
import io
import marshal
import pickle
import pkgutil
import re
import textwrap
from collections.abc import Callable, Iterator
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import secagg
from secagg.errors import SecretSerializationError, UsageError
from secagg.keys import KeyPair
from secagg.protocols.wire import ProtocolMessage
from secagg.secret import REFUSING_HOOKS, SecretHolder, refuses_serialization
from secagg.shamir import share_secrets

# --- the criterion --------------------------------------------------------------------------

SECRET_WORDS = frozenset(
    {
        "secret", "secrets", "private", "priv", "sk",
        "key", "keys", "seed", "seeds", "nonce", "nonces",
        "share", "shares", "mask", "masks", "noise", "randomness",
        "input", "inputs", "plaintext", "plaintexts",
        "encryptor", "decryptor", "cipher", "ciphers",
    }
)  # fmt: skip
"""Words (of a snake_case or CamelCase name) that mark a secret."""

PUBLIC_WORDS = frozenset(
    {
        "public", "verify", "verification", "fingerprint", "digest", "commitment",
        "commitments", "count", "counts", "bits", "bytes", "length", "size", "id", "ids",
        "index", "layout", "version", "limit", "round", "sealed",
    }
)  # fmt: skip
"""Words that make a name public even beside a secret word (``public_key``, ``key_bits``,
``sharing_id``, ``input_round``)."""

CAPABILITY_WORDS = frozenset({"decrypt", "sign", "exchange", "private", "secret"})
"""Words of a method name that needs a secret to run."""

RAW_SECRET_TYPES = re.compile(r"\b(X25519PrivateKey|Ed25519PrivateKey|CipherContext)\b")
"""Library types that are key material whatever the attribute is called."""

SECRET_DOCSTRING = re.compile(r"(?<!no )(?<!not )\bsecret\b", re.IGNORECASE)

# --- the allowlists (each entry says why the class is not a secret holder) -------------------

PUBLIC_LOOKALIKES: dict[str, str] = {
    # Names that look secret, contents that are not.
    "secagg.bench.runs.Floors": "_mask selects table rows (booleans), not a mask of a value",
    "secagg.cost.model.FloorWork": "masks counts the PRG expansions a floor needs (a cost)",
    "secagg.he.paillier.FreshRandomness": (
        "holds only the public key; each r it draws is returned at once, never kept"
    ),
    "secagg.he.paillier.PrecomputedBaseRandomness": (
        "holds h = x^n mod n^2, public in Damgard-Jurik-Nielsen's scheme; each alpha is fresh "
        "and never kept"
    ),
    "secagg.he.threshold_paillier.CombinedDecryption": (
        "plaintexts is the decrypted aggregate: the output the protocol reveals"
    ),
    "secagg.protocols.threshold_he.server.ThresholdHEServer": (
        "_plaintexts is the decrypted aggregate (the output); the server holds no key"
    ),
    "secagg.protocols.bonawitz.server.Server": "_taken_keys are the clients' PUBLIC keys",
    "secagg.protocols.bonawitz.messages.PeerKeys": "a peer's advertised PUBLIC keys",
    "secagg.integrations.flower.report.RoundReport": "*_key are names of Flower records",
    "secagg.integrations.flower.identity.IdentityRegistry": "the nodes' PUBLIC verify keys",
    "secagg.integrations.flower.settings.SecAggSettings": "weighted_by_key names a record",
    "secagg.integrations.flower.wire.SessionSetup": "weighted_by_key names a record",
    "secagg.integrations.torch.fedavg.SecureFedAvg": "parameter_keys are state-dict names",
    "secagg.dp.ledger.RoundPrivacy": "noise_multiplier is a public figure of the plan",
    "secagg.integrations.privacy.PrivacyReport": (
        "noise_multiplier and noise_clients are public figures of the plan"
    ),
    "secagg.protocols.threshold_ckks.messages.PeerKey": "a member's advertised PUBLIC key",
    "secagg.protocols.threshold_ckks.server.ThresholdCkksServer": (
        "_shares are decryption shares, sent TO the server to be combined"
    ),
    "secagg.dp.plan.DPPlan": "the public plan: noise parameters are published (accounting)",
    "secagg.dp.planning._Solver": "searches public plan parameters (scale, noise level)",
    "secagg.dp.tables._Residual": "table_share is probability mass of a public pmf",
    # What the server is meant to learn: shares revealed to it in Unmasking (of survivors'
    # self-mask seeds and dropped clients' mask keys). Holding them is its job, and an
    # outsider who obtained them with the masked inputs could compute only the sum.
    "secagg.protocols.bonawitz.messages.RevealedShare": (
        "a share its holder reveals TO THE SERVER in Unmasking (part of a wire message)"
    ),
    "secagg.protocols.bonawitz.server_unmasking.RevealedShares": (
        "the server's record of the shares revealed to it (see above)"
    ),
    "secagg.protocols.bonawitz.server_unmasking._Job": (
        "the server's parsed revealed shares (and box keys) of one secret, and its rebuild"
    ),
    "secagg.protocols.bonawitz.server_unmasking.Reconstruction": (
        "what Unmasking rebuilds for the server: survivors' self-mask seeds, dropped "
        "clients' mask keys (the secrets the protocol reveals to it)"
    ),
    "secagg.protocols.bonawitz.messages.BoxKey": (
        "a box key its holder reveals TO THE SERVER in a dispute (part of a wire message)"
    ),
    "secagg.protocols.bonawitz.messages.Complaint": (
        "a complaint's pair secret and proof, revealed TO THE SERVER (part of a wire message)"
    ),
    "secagg.protocols.bonawitz.messages.PairSecret": (
        "a survivor's pair secret with a dropped client, revealed TO THE SERVER in the "
        "fallback wave (part of a wire message)"
    ),
    "secagg.protocols.bonawitz.messages.DealtBoxes": (
        "sealed boxes (ciphertexts) the server relays; only holders have their keys"
    ),
    # Threshold CKKS: the public halves of its objects.
    "secagg.he.threshold_ckks.ciphertext.Ciphertext": "mask is c1, the public half",
    "secagg.he.threshold_ckks.ciphertext.CiphertextMask": "the public c1 masks of a vector",
    "secagg.he.threshold_ckks.decryption.DecryptionShare": (
        "meant for the server; smudging noise hides the key share (like PartialDecryption)"
    ),
    "secagg.he.threshold_ckks.keys.PublicKey": "seed is the public CRS seed of the session",
    "secagg.he.threshold_ckks.params.NoiseBudget": "figures of the noise derivation",
    # Property-testing tools: their inputs are generated test data, printed on a failure.
    "secagg.testing.harness.Network": "inputs are hypothesis-generated test data",
    "secagg.testing.invariants.RunReport": "inputs are hypothesis-generated test data",
}

TRANSITIVE: dict[str, str] = {
    # Classes whose secrets are SecretHolder objects (never raw bytes): pickling or copying
    # them reaches the holders' refusal (test_containers_of_holders_refuse_too).
    "secagg.testing.threshold_he.ThresholdHETarget": "KeyShare / CkksContext objects",
    "secagg.protocols.threshold_he.keys.ThresholdPaillierSetup": "member_shares is MemberKeyShares",
}

# Categories that are public by construction.
def _public_by_construction(cls: type) -> bool:
    return (
        issubclass(cls, BaseException | enum.Enum)  # errors and constants
        or bool(getattr(cls, "_is_protocol", False))  # typing.Protocol: no instances
        # A wire message is what its sender hands its recipient: to_bytes() is its
        # serialization, and nothing in it is secret from that recipient.
        or issubclass(cls, ProtocolMessage)
    )


# --- discovery ----------------------------------------------------------------------------------


def words(name: str) -> set[str]:
    """The lower-case words of a snake_case or CamelCase name."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return {word.lower() for word in spaced.split("_") if word}


def _secret_name(name: str) -> bool:
    found = words(name)
    return bool(found & SECRET_WORDS) and not found & PUBLIC_WORDS


def secagg_classes() -> list[type]:
    """Every class defined by a module of secagg (the CLI entry point excepted: importing
    ``secagg.__main__`` runs the CLI)."""
    classes: list[type] = []
    for info in pkgutil.walk_packages(secagg.__path__, "secagg."):
        if info.name == "secagg.__main__":
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                classes.append(value)
                classes.extend(
                    inner
                    for inner in vars(value).values()
                    if isinstance(inner, type) and inner.__module__ == module.__name__
                )
    return list(dict.fromkeys(classes))


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _class_node(cls: type) -> ast.ClassDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            return node
    return None


def attributes(cls: type) -> dict[str, str | None]:
    """name -> type text (None when unknown) of every attribute ``cls`` itself defines."""
    found: dict[str, str | None] = {}
    slots = cls.__dict__.get("__slots__", ())
    for name in (slots,) if isinstance(slots, str) else slots:
        found.setdefault(name, None)
    for name, annotation in inspect.get_annotations(cls).items():
        found[name] = annotation if isinstance(annotation, str) else repr(annotation)
    node = _class_node(cls)
    if node is None:
        return found
    for function in node.body:
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = function.args
        params = {
            arg.arg: ast.unparse(arg.annotation)
            for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
            if arg.annotation is not None
        }
        for item in ast.walk(function):
            for name, annotation in _stores(item, params):
                if annotation is not None or name not in found:
                    found[name] = annotation
    return found


def _self_attribute(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        if target.value.id == "self":
            yield target.attr
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _self_attribute(element)


def _stores(item: ast.AST, params: dict[str, str]) -> Iterator[tuple[str, str | None]]:
    """(attribute, type text) of each store into ``self`` made by the statement ``item``."""
    if isinstance(item, ast.AnnAssign):
        for name in _self_attribute(item.target):
            yield name, ast.unparse(item.annotation)
    elif isinstance(item, ast.Assign | ast.AugAssign):
        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
        value = item.value
        annotation = params.get(value.id) if isinstance(value, ast.Name) else None
        for target in targets:
            for name in _self_attribute(target):
                yield name, annotation
    elif (
        isinstance(item, ast.Call)
        and ast.unparse(item.func) in {"object.__setattr__", "setattr"}
        and len(item.args) >= 2
        and isinstance(item.args[0], ast.Name)
        and item.args[0].id == "self"
        and isinstance(item.args[1], ast.Constant)
        and isinstance(item.args[1].value, str)
    ):
        yield item.args[1].value, None


def secret_signals(cls: type, holder_names: frozenset[str]) -> list[str]:
    """Why instances of ``cls`` can hold secret material (empty: no signal fires).

    ``holder_names`` are the names of the SecretHolder classes (an attribute of such a type
    is protected by that holder)."""
    reasons = []
    if _secret_name(cls.__name__):
        reasons.append(f"its name {cls.__name__}")
    holder_type = (
        re.compile(r"\b(" + "|".join(sorted(holder_names)) + r")\b") if holder_names else None
    )
    for name, annotation in attributes(cls).items():
        if annotation is not None and RAW_SECRET_TYPES.search(annotation):
            reasons.append(f"attribute {name}: {annotation}")
        elif _secret_name(name) and not (
            annotation is not None and holder_type is not None and holder_type.search(annotation)
        ):
            reasons.append(f"attribute {name}")
    for name, value in vars(cls).items():
        method = isinstance(value, staticmethod | classmethod | property)
        if (
            (method or inspect.isfunction(value))
            and words(name) & CAPABILITY_WORDS
            and not words(name) & PUBLIC_WORDS
        ):
            reasons.append(f"method {name}")
    if SECRET_DOCSTRING.search(cls.__dict__.get("__doc__") or ""):
        reasons.append("its docstring")
    return reasons


def unprotected(classes: list[type], holder_names: frozenset[str]) -> dict[str, list[str]]:
    """Classes that fire a signal and are neither refusing SecretHolders nor allowlisted."""
    out = {}
    for cls in classes:
        name = qualified(cls)
        if cls is SecretHolder or _public_by_construction(cls) or refuses_serialization(cls):
            continue
        if name in PUBLIC_LOOKALIKES or name in TRANSITIVE:
            continue
        reasons = secret_signals(cls, holder_names)
        if reasons or issubclass(cls, SecretHolder):  # a holder whose hooks were replaced
            out[name] = reasons or ["a SecretHolder whose refusing hooks were replaced"]
    return out


CLASSES = secagg_classes()
HOLDERS = [cls for cls in CLASSES if issubclass(cls, SecretHolder) and cls is not SecretHolder]
HOLDER_NAMES = frozenset(cls.__name__ for cls in HOLDERS)


# --- the checks -------------------------------------------------------------------------------


def test_every_class_that_can_hold_secrets_is_a_secret_holder() -> None:
    missing = unprotected(CLASSES, HOLDER_NAMES)
    assert not missing, "\n".join(
        ["classes that can hold secrets but do not refuse pickling (make them SecretHolders):"]
        + [f"  {name}: {', '.join(reasons)}" for name, reasons in sorted(missing.items())]
    )


def test_the_classes_the_review_pickled_are_holders() -> None:
    """The review's list, by name: the discovery found them (and the signals keep them)."""
    names = {qualified(cls) for cls in HOLDERS}
    for expected in (
        "secagg.keys.KeyPair",
        "secagg.signing.SigningKey",
        "secagg.prg.Prg",
        "secagg.shamir.sharing.Share",
        "secagg.he.paillier.PaillierPrivateKey",
        "secagg.he.threshold_paillier.KeyShare",
        "secagg.he.ckks.CkksContext",
        "secagg.protocols.bonawitz.client.Client",
        "secagg.protocols.threshold_he.client.ThresholdHEClient",
    ):
        assert expected in names
        cls = next(c for c in HOLDERS if qualified(c) == expected)
        assert secret_signals(cls, HOLDER_NAMES), f"{expected}: no signal fires"


@pytest.mark.parametrize("allowlist", [PUBLIC_LOOKALIKES, TRANSITIVE])
def test_the_allowlists_are_current(allowlist: dict[str, str]) -> None:
    by_name = {qualified(cls): cls for cls in CLASSES}
    for name, reason in allowlist.items():
        assert reason
        assert name in by_name, f"{name} is allowlisted but no longer exists"
        cls = by_name[name]
        assert not issubclass(cls, SecretHolder), f"{name} is a holder: drop it from the list"
        assert secret_signals(cls, HOLDER_NAMES), f"{name} fires no signal: drop it"


def test_every_holder_names_its_export_and_keeps_the_hooks() -> None:
    assert len(HOLDERS) >= 15
    for cls in HOLDERS:
        assert refuses_serialization(cls), qualified(cls)
        assert cls.secret_export


# --- planted classes: the test fails on a new unprotected one ---------------------------------


class _PlantedSeed:
    def __init__(self, seed: bytes) -> None:
        self._seed = seed


@dataclasses.dataclass(frozen=True)
class _PlantedPrivate:
    owner: int
    private_scalar: int


class _PlantedRawKey:
    __slots__ = ("_k",)

    def __init__(self) -> None:
        self._k: X25519PrivateKey = X25519PrivateKey.generate()


class _PlantedDecryptor:
    def decrypt(self, data: bytes) -> bytes:
        return data


class _PlantedNoteOfSecret:
    """Holds the holder's secret material (an opaque blob)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob


class _PlantedSetattr:
    def __init__(self, value: bytes) -> None:
        object.__setattr__(self, "noise", value)


class _PlantedOverride(SecretHolder, export="none"):
    pass


_PlantedOverride.__reduce_ex__ = object.__reduce_ex__  # type: ignore[method-assign,assignment]


class _PlantedProtected(SecretHolder, export="none"):
    def __init__(self, seed: bytes) -> None:
        self._seed = seed


class _PlantedPublic:
    """No secret in it."""

    def __init__(self, public_key: bytes, key_bits: int) -> None:
        self.public_key = public_key
        self.key_bits = key_bits
        self.sharing_id = b""


class _PlantedContainer:
    def __init__(self, keys: KeyPair) -> None:
        self._keys = keys  # protected transitively: KeyPair refuses


@dataclasses.dataclass
class _PlantedDataclassContainer:
    keys: KeyPair


PLANTED_UNPROTECTED = (
    _PlantedSeed,
    _PlantedPrivate,
    _PlantedRawKey,
    _PlantedDecryptor,
    _PlantedNoteOfSecret,
    _PlantedSetattr,
    _PlantedOverride,
)


def test_planted_secret_classes_are_found() -> None:
    planted = [
        *PLANTED_UNPROTECTED,
        _PlantedProtected,
        _PlantedPublic,
        _PlantedContainer,
        _PlantedDataclassContainer,
    ]
    found = unprotected(planted, HOLDER_NAMES)
    assert set(found) == {qualified(cls) for cls in PLANTED_UNPROTECTED}, found
    # And the whole check fails with them in: a new class cannot slip through.
    assert unprotected([*CLASSES, _PlantedSeed], HOLDER_NAMES).keys() == {qualified(_PlantedSeed)}


def test_a_holder_may_not_redefine_a_hook_or_omit_its_export() -> None:
    for hook in REFUSING_HOOKS:
        with pytest.raises(TypeError, match=hook):
            type("Leaky", (SecretHolder,), {hook: lambda self, *a: None}, export="x")
    with pytest.raises(TypeError, match="export"):
        type("Unnamed", (SecretHolder,), {})


# --- behaviour: every path refuses, for real instances ------------------------------------------


def _bonawitz_clients() -> tuple[object, object]:
    from secagg.protocols.bonawitz.messages import ROUND_UNMASKING
    from tests.helpers.protocol import make_session, run_session

    fresh = make_session(3, 2).clients[1]
    session = make_session(4, 3, seed=1)
    run_session(session, drops={ROUND_UNMASKING: {1}})  # client 1 masked, holds peers' shares
    masked = session.clients[1]
    assert masked.state.name == "AWAIT_UNMASKING" and masked._held
    return fresh, masked


def _threshold_he_objects() -> list[object]:
    from secagg.he.paillier import RandomnessPool
    from secagg.protocols.threshold_he.client import ThresholdHEClient
    from secagg.protocols.threshold_he.keys import setup_threshold_paillier

    config, shares = setup_threshold_paillier([1, 2, 3], bits=8, vector_length=4, key_bits=512)
    member = config.committee[0]
    client = ThresholdHEClient(
        config, member, np.arange(4, dtype=np.uint32), key_share=shares[member]
    )
    pool = RandomnessPool(config.public_key.paillier)
    pool.precompute(2)
    return [client, shares[member], pool]


def _instances() -> Iterator[object]:
    from secagg.encoding import _Rounder
    from secagg.he.ckks import CkksContext
    from secagg.he.paillier import generate_paillier_keypair
    from secagg.integrations.flower.client_mod import _Stored
    from secagg.prg import Prg
    from secagg.protocols.bonawitz.client_state import ClientSnapshot
    from secagg.protocols.bonawitz.rounds import ClientState
    from secagg.shamir import parse_shares
    from secagg.signing import SigningKey
    from secagg.sim.simulator import _InputFeed

    share = share_secrets([bytes(32)], holders=[1, 2, 3], threshold=2)[1][0]
    yield KeyPair.generate()
    yield SigningKey.generate()
    yield Prg(bytes(32), domain=b"d", bits=16)
    yield share
    yield parse_shares([share.to_bytes()])
    yield generate_paillier_keypair(512)[1]
    yield CkksContext.generate()
    yield from _bonawitz_clients()
    yield from _threshold_he_objects()
    yield ClientSnapshot(ClientState.AWAIT_SHARE_KEYS, self_seed=bytes(32))
    yield _Stored(client=b"state")
    yield _Rounder(8)
    yield _InputFeed({1: np.zeros(2, np.uint32)}, 2, 16, [1])


def _paths() -> dict[str, Callable[[object], object]]:
    def pure_python_pickler(obj: object) -> bytes:
        buffer = io.BytesIO()
        pickle._Pickler(buffer).dump(obj)  # type: ignore[attr-defined]
        return buffer.getvalue()

    paths: dict[str, Callable[[object], object]] = {
        f"pickle protocol {p}": (lambda obj, p=p: pickle.dumps(obj, protocol=p))
        for p in range(pickle.HIGHEST_PROTOCOL + 1)
    }
    paths["pure-Python pickler"] = pure_python_pickler
    paths["multiprocessing"] = ForkingPickler.dumps
    paths["copy.copy"] = copy.copy
    paths["copy.deepcopy"] = copy.deepcopy
    paths["__getstate__"] = lambda obj: obj.__getstate__()
    return paths


INSTANCES = list(_instances())


def test_the_instances_cover_the_review_and_more() -> None:
    kinds = {type(obj).__name__ for obj in INSTANCES}
    assert kinds >= {
        "KeyPair", "SigningKey", "Prg", "Share", "ShareArrays", "PaillierPrivateKey",
        "CkksContext", "Client", "ThresholdHEClient", "KeyShare", "RandomnessPool",
        "ClientSnapshot", "_Stored", "_Rounder", "_InputFeed",
    }  # fmt: skip


@pytest.mark.parametrize("obj", INSTANCES, ids=lambda obj: type(obj).__name__)
def test_every_path_refuses_with_the_class_and_its_export(obj: object) -> None:
    cls = type(obj)
    assert isinstance(obj, SecretHolder)
    for path, run in _paths().items():
        with pytest.raises(SecretSerializationError) as caught:
            run(obj)
        text = str(caught.value)
        assert cls.__name__ in text and cls.secret_export in text, (path, text)  # type: ignore[attr-defined]
        assert isinstance(caught.value, TypeError) and isinstance(caught.value, UsageError)
    with pytest.raises(ValueError, match="unmarshallable"):
        marshal.dumps(obj)  # type: ignore[arg-type]


def test_containers_of_holders_refuse_too() -> None:
    """Why an attribute typed as a SecretHolder needs no protection of its own."""
    holder = KeyPair.generate()
    for container in (
        {"k": holder},
        [holder],
        (1, holder),
        _PlantedDataclassContainer(holder),
        _PlantedContainer(holder),
    ):
        with pytest.raises(SecretSerializationError):
            pickle.dumps(container)
        with pytest.raises(SecretSerializationError):
            copy.deepcopy(container)
