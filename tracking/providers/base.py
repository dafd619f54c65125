"""The one small interface every tracking provider implements, and what they share.

A provider turns a provider's wire format into normalized `EventData` (pushed payloads and pulled
responses alike), verifies push signatures, and pulls batches politely (its quota honoured by a token
bucket, `Retry-After` and 429 respected). It never touches the database: ingestion does that.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import httpx

from tracking.services import EventData

if TYPE_CHECKING:
    from tracking.providers.ratelimit import Bucket


class ProviderError(Exception):
    """A provider call failed. `retryable` says whether trying again later can help."""

    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Bad credentials, a refused account, a request the provider will never accept: stop and tell a human."""

    retryable = False


class RetryableProviderError(ProviderError):
    """Rate limited, timed out, 5xx: try again later (after `retry_after` seconds when the provider said)."""

    retryable = True


class PayloadError(ValueError):
    """A pushed body that is not in the provider's documented format. The webhook answers 400 with this text."""


class Recipient(NamedTuple):
    """Who the parcel goes to, for providers that ask (Kdniao's subscription: SF Express checks the last
    four digits of the phone; Kuaidi100's query and subscription: the phone, for SF Express and ZTO).
    Empty strings where the order does not say."""

    name: str = ""
    phone: str = ""
    province: str = ""
    city: str = ""
    district: str = ""
    address: str = ""


@dataclass(frozen=True)
class TrackingRef:
    """What a pull or a registration asks about: one parcel."""

    tracking_number: str
    carrier: str = ""  # our carrier code (e.g. "jtexpress-my"); adapters map it to theirs where needed
    recipient: Recipient | None = None  # `register`: the order's recipient; a poll: the buyer's phone only
    # `register`: the provider stopped tracking this number (ParsedPush.stopped); start it again. Where
    # registering again is not enough (17TRACK answers "already registered"), the adapter restarts it.
    restart: bool = False


class FinalRefusal(str):
    """A refusal `register` returns when asking again cannot help (17TRACK re-tracks a number only once):
    the registration is given up at once instead of asked again with backoff."""


class ParsedTracking(NamedTuple):
    """One parcel's checkpoints as a provider reported them, normalized.

    Immutable. NamedTuples, like EventData, rather than frozen dataclasses: one of each is built per push,
    and a frozen dataclass's __init__ cost several times as much."""

    tracking_number: str
    carrier: str  # the provider's carrier code / slug, as given
    events: Sequence[EventData]
    expected_delivery: date | None = None
    raw_status: str = ""  # provider's own overall status code, kept for display and debugging


class ParsedPush(NamedTuple):
    """A pushed delivery, parsed. `trackings` may be empty for pushes that carry no checkpoints."""

    kind: str  # e.g. "tracking_update", "edd_revise", "TRACKING_UPDATED", "kdniao_push"
    trackings: Sequence[ParsedTracking]
    event_id: str = ""  # the provider's id for this delivery, when given
    reply: Mapping[str, Any] | None = None  # JSON body the provider expects back (Kdniao does), else None
    extra: Mapping[str, Any] = MappingProxyType({})  # what else the push said (read-only; empty by default)
    # Numbers the provider says it stopped tracking, with its reason: their registration is made again.
    stopped: Mapping[str, str] = MappingProxyType({})
    # Numbers the provider says travel with another carrier than the one they were registered with, with its
    # code for the right one (Kuaidi100's comNew): the parcel's carrier is corrected.
    carriers_corrected: Mapping[str, str] = MappingProxyType({})


class Provider:
    """Base class for tracking providers. Subclasses are registered by `name` in `tracking.providers.REGISTRY`.

    Constructed per TrackingConnection with its credentials and webhook secret. `base_url` is overridable so
    tests can point a provider at a local HTTP server speaking its documented format.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    batch_size: ClassVar[int] = 40  # tracking numbers per pull request
    # True where the provider tracks, and pushes, only numbers registered with it (`register`).
    registers: ClassVar[bool] = False
    # False where `fetch` gets nothing for a number the provider has not registered: polling such a number
    # waits for its registration. True where the pull works regardless (Kdniao's instant query).
    pulls_unregistered: ClassVar[bool] = True
    default_base_url: ClassVar[str] = ""

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        webhook_secret: str = "",
        base_url: str | None = None,
        timeout: float = 10.0,
        callback_url: str = "",
    ) -> None:
        self.credentials = dict(credentials or {})
        self.webhook_secret = webhook_secret
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = timeout
        # The connection's webhook URL, for providers told per registration where to push (Kuaidi100).
        self.callback_url = callback_url

    # --- push -------------------------------------------------------------------------------------------
    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        """True when the push is signed with this connection's secret. Constant-time comparison."""
        raise NotImplementedError

    def parse_push(self, *, body: bytes, headers: Mapping[str, str]) -> ParsedPush:
        """Parse a verified push body. Raises PayloadError for anything not in the documented format."""
        raise NotImplementedError

    # --- pull -------------------------------------------------------------------------------------------
    def fetch(self, refs: Sequence[TrackingRef]) -> list[ParsedTracking]:
        """Pull the current checkpoints of up to `batch_size` parcels. Raises ProviderError subclasses."""
        raise NotImplementedError

    # --- registration -----------------------------------------------------------------------------------
    def register(self, refs: Sequence[TrackingRef]) -> dict[str, str]:
        """Have the provider track these parcels (and push their updates). Returns the numbers it refused,
        each with its reason (a FinalRefusal where asking again cannot help); a number it already tracks is
        not refused. Refs with `restart` are numbers the provider stopped tracking. Raises ProviderError subclasses
        when the request as a whole fails. Only called where `registers` is True."""
        raise NotImplementedError

    # --- carriers ---------------------------------------------------------------------------------------
    def carrier_codes(self, provider_code: str) -> list[str]:
        """Our carrier codes that name the carrier this provider calls `provider_code` (lowercase), the
        provider's own code last: what a parcel of that carrier may be booked under."""
        return [provider_code.strip().lower()]

    # --- health -----------------------------------------------------------------------------------------
    def check(self) -> str:
        """Ask the provider, with one cheap request, whether the credentials work: a line saying what it
        answered. Raises ProviderError subclasses when they do not (permanent: the key or the account;
        retryable: the provider could not be reached)."""
        raise NotImplementedError


class HttpProvider(Provider):
    """A provider reached over HTTP. Tests inject the token bucket (`bucket`, else each adapter takes its
    account's shared quota) and the httpx client (`client`, else one per call, closed after it)."""

    def __init__(
        self, *, bucket: Bucket | None = None, client: httpx.Client | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self._bucket = bucket
        self._client = client

    @contextmanager
    def http(self) -> Iterator[httpx.Client]:
        """The client for one call: the injected one, or a fresh one closed when the call is done."""
        if self._client is not None:
            yield self._client
            return
        with httpx.Client(timeout=self.timeout) as client:
            yield client
