"""Pull ASC records over HTTP: per kind, pages after a since-watermark, with bounded retries.

The API contract (docs/adapters-asc.md): ``GET {base_url}/{collection}?since=&page_size=&cursor=``
answers ``{"items": [...], "next_cursor": "..." | null}``; items are ordered by ``updated_at``
(as an instant) then id, and ``since`` is inclusive.
"""

from __future__ import annotations

import email.utils
import json
import random as random_module
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.asc.kinds import KINDS, SYSTEM, Kind, get_kind
from adapters.asc.records import build_record, unpaired_surrogate
from adapters.base import AdapterError, SourceRecord

_SECONDS = re.compile(r"[0-9]+")


class AscFetchError(AdapterError):
    """A page could not be fetched: a permanent HTTP error, a malformed body or retries ran out.

    ``retryable`` says whether the failure was transient (the retry loop's business);
    ``retry_after`` is the server's Retry-After in seconds, when it sent one.
    """

    def __init__(
        self,
        reason: str,
        *,
        kind: str,
        page: int,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason, origin=f"{kind} page {page}")
        self.kind = kind
        self.page = page
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@contextmanager
def map_exceptions(*, kind: str, page: int) -> Iterator[None]:
    """Translate httpx exceptions raised in the block into AscFetchError (STYLE rule 7)."""
    where = f"asc {kind} page {page}"
    try:
        yield
    except httpx.TimeoutException as exc:
        raise AscFetchError(
            f"{where}: timed out ({type(exc).__name__})", kind=kind, page=page, retryable=True
        ) from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        # The connection failed or dropped: the server may be restarting, so try again.
        raise AscFetchError(
            f"{where}: network error ({type(exc).__name__}: {exc})",
            kind=kind,
            page=page,
            retryable=True,
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # Bad URL or scheme, proxy, redirects, decoding: retrying cannot help.
        raise AscFetchError(
            f"{where}: request failed ({type(exc).__name__}: {exc})", kind=kind, page=page
        ) from exc


class AscHttpSource:
    """Pull ASC records over HTTP, kind by kind, from a since-watermark (a SourceAdapter).

    ``read()`` yields each item as a SourceRecord whose ``meta["watermark"]`` is the
    watermark the kind has reached once this record is stored (commit it with the record),
    plus ``meta["page"]``. An item that is not a usable record is yielded as an AdapterError
    and does not move the watermark. A page that cannot be fetched (a 4xx other than 429, a
    malformed body, or transient failures beyond ``max_retries``) raises
    :class:`AscFetchError`: what was yielded before stays valid, and the next run resumes
    from the last committed watermark. Nothing is logged and no error names a record's content.

    Transient failures (connect errors, timeouts, dropped connections, 429 and 5xx) are
    retried up to ``max_retries`` times, waiting the server's Retry-After when given (giving
    up if it exceeds ``max_retry_after``) or else a full-jitter backoff: a random time between
    0 and ``min(max_backoff, backoff * 2**attempt)`` seconds. ``sleep`` and ``random`` are
    injectable for tests. A ``client`` passed in is used as is and not closed.
    """

    system = SYSTEM

    def __init__(
        self,
        base_url: str,
        *,
        kinds: Iterable[str] | None = None,
        since: Mapping[str, str | None] | None = None,
        page_size: int = 500,
        client: httpx.Client | None = None,
        auth_token: str | None = None,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 300.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.base_url = base_url.rstrip("/")
        # Keep the load order (persons first) whatever order the caller names the kinds in.
        wanted = {get_kind(name).name for name in kinds} if kinds is not None else set(KINDS)
        self.kinds: tuple[Kind, ...] = tuple(k for k in KINDS.values() if k.name in wanted)
        self.since: dict[str, str | None] = {k.name: (since or {}).get(k.name) for k in self.kinds}
        # The watermark each kind has reached in the latest read (for status displays).
        self.watermarks: dict[str, str | None] = dict(self.since)
        self.page_size = page_size
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        self._client = client
        self._headers = {"Accept": "application/json"}
        if auth_token:
            self._headers["Authorization"] = f"Bearer {auth_token}"
        self._sleep = sleep
        self._random = random

    def read(self) -> Iterator[SourceRecord | AdapterError]:
        """Yield every record changed since each kind's watermark, kind by kind, in order."""
        if self._client is not None:
            yield from self._read_kinds(self._client)
            return
        with httpx.Client(timeout=self.timeout) as client:
            yield from self._read_kinds(client)

    def _read_kinds(self, client: httpx.Client) -> Iterator[SourceRecord | AdapterError]:
        for kind in self.kinds:
            yield from self._read_kind(client, kind)

    def _read_kind(self, client: httpx.Client, kind: Kind) -> Iterator[SourceRecord | AdapterError]:
        since = self.since[kind.name]
        watermark, reached = since, _instant(since)
        self.watermarks[kind.name] = watermark
        cursor: str | None = None
        page = 0
        while True:
            page += 1
            items, next_cursor = self._fetch_page(client, kind, page, since, cursor)
            for index, item in enumerate(items, start=1):
                candidate, candidate_at = watermark, reached
                if isinstance(item, dict):
                    at = _instant(item.get(kind.version_field))
                    if at is not None and (reached is None or at > reached):
                        candidate, candidate_at = item[kind.version_field], at
                result = _item_record(kind, item, page, index, candidate)
                if isinstance(result, SourceRecord):
                    watermark, reached = candidate, candidate_at
                    self.watermarks[kind.name] = watermark
                yield result
            if next_cursor is None:
                return
            if next_cursor == cursor:
                raise AscFetchError(
                    f"asc {kind.name} page {page}: the server returned the same cursor again",
                    kind=kind.name,
                    page=page,
                )
            cursor = next_cursor

    def _fetch_page(
        self, client: httpx.Client, kind: Kind, page: int, since: str | None, cursor: str | None
    ) -> tuple[list[Any], str | None]:
        params = {"page_size": str(self.page_size)}
        if since is not None:
            params["since"] = since
        if cursor is not None:
            params["cursor"] = cursor
        url = f"{self.base_url}/{kind.collection}"
        attempt = 0
        while True:
            try:
                with map_exceptions(kind=kind.name, page=page):
                    response = client.get(url, params=params, headers=self._headers)
                return _page_contents(response, kind.name, page)
            except AscFetchError as exc:
                if not exc.retryable:
                    raise
                delay = self._delay(exc, attempt)
                self._sleep(delay)
                attempt += 1

    def _delay(self, error: AscFetchError, attempt: int) -> float:
        """Return how long to wait before retrying, or raise if no retry is left."""
        if attempt >= self.max_retries:
            raise AscFetchError(
                f"{error.reason}; gave up after {attempt + 1} attempts",
                kind=error.kind,
                page=error.page,
                status=error.status,
            ) from error
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                raise AscFetchError(
                    f"{error.reason}; the server asked to retry after {error.retry_after:g} s,"
                    f" longer than max_retry_after ({self.max_retry_after:g} s)",
                    kind=error.kind,
                    page=error.page,
                    status=error.status,
                ) from error
            return error.retry_after
        # Full jitter: spreads out clients that failed together so they do not retry together.
        return self._random() * min(self.max_backoff, self.backoff * 2.0**attempt)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Return a Retry-After header's wait in seconds (delta or HTTP-date), or None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _page_contents(response: httpx.Response, kind: str, page: int) -> tuple[list[Any], str | None]:
    """Return a page's items and next cursor, or raise AscFetchError saying what is wrong."""
    where = f"asc {kind} page {page}"
    status = response.status_code
    # HTTP/2 has no reason phrase on the wire; fall back to the standard one.
    phrase = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    status_text = f"HTTP {status} {phrase}".rstrip()
    if status == 429 or status >= 500:
        raise AscFetchError(
            f"{where}: {status_text}",
            kind=kind,
            page=page,
            status=status,
            retryable=True,
            retry_after=retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC)),
        )
    if not 200 <= status < 300:
        raise AscFetchError(
            f"{where}: {status_text}; not retried",
            kind=kind,
            page=page,
            status=status,
        )
    try:
        body = json.loads(response.content, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise _malformed(where, kind, page, status, detail) from None
    except UnicodeDecodeError:
        raise _malformed(where, kind, page, status, "not UTF-8 text") from None
    except RecursionError:
        raise _malformed(where, kind, page, status, "nested too deeply") from None
    except ValueError as exc:
        raise _malformed(where, kind, page, status, str(exc)) from None
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        detail = 'expected an object with an "items" array'
        raise _malformed(where, kind, page, status, detail)
    next_cursor = body.get("next_cursor")
    if next_cursor is not None and (not isinstance(next_cursor, str) or not next_cursor):
        detail = '"next_cursor" must be a non-empty string or null'
        raise _malformed(where, kind, page, status, detail)
    return body["items"], next_cursor


def _item_record(
    kind: Kind, item: Any, page: int, index: int, watermark: str | None
) -> SourceRecord | AdapterError:
    origin = f"{kind.collection} page {page} item {index}"
    # The page is parsed as a whole, so an item's own bytes are not at hand: keep the item
    # re-serialised compactly, as the export files write it.
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    raw = text.encode("utf-8", "surrogatepass")
    where = unpaired_surrogate(item)
    if where is not None:
        return AdapterError(
            f"{origin}: field {where!r} holds an unpaired surrogate escape (not Unicode text)",
            field=where,
            raw=raw,
            origin=origin,
        )
    return build_record(
        kind, item, raw=raw, origin=origin, meta={"watermark": watermark, "page": page}
    )


def _instant(value: object) -> datetime | None:
    """Return a watermark as an instant, or None if it is not an ISO date-time with an offset."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Without an offset the instant is unknown and cannot be compared with the others.
    return moment if moment.tzinfo is not None else None


def _malformed(where: str, kind: str, page: int, status: int, detail: str) -> AscFetchError:
    return AscFetchError(
        f"{where}: malformed response ({detail}); not retried", kind=kind, page=page, status=status
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
