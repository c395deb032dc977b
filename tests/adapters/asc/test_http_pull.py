"""The HTTP pull client against a real HTTP server on 127.0.0.1 serving the sample."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.asc import KINDS, AscFetchError, AscHttpSource, map_exceptions
from adapters.asc.http_pull import retry_after_seconds
from adapters.base import AdapterError, SourceRecord
from tests.adapters.asc.conftest import AscApi


class Sleeps(list[float]):
    """An injected sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def source(api: AscApi, sleeps: Sleeps | None = None, **options: Any) -> AscHttpSource:
    options.setdefault("page_size", 7)
    return AscHttpSource(
        api.base_url,
        sleep=sleeps if sleeps is not None else Sleeps(),
        random=lambda: 0.5,
        **options,
    )


def pulled(pull: AscHttpSource) -> list[SourceRecord]:
    """Read everything, asserting that every item was a record."""
    results = list(pull.read())
    assert all(isinstance(r, SourceRecord) for r in results), results
    return [r for r in results if isinstance(r, SourceRecord)]


def rows_of(results: list[SourceRecord | AdapterError]) -> list[tuple[str, str]]:
    return [(r.kind, r.id) for r in results if isinstance(r, SourceRecord)]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


class TestPaging:
    def test_every_record_arrives_once_in_order_across_pages(
        self, asc_api: AscApi, sample_data: dict[str, list[dict[str, Any]]]
    ) -> None:
        results = list(source(asc_api).read())
        expected = [
            (kind.name, row[kind.id_field])
            for kind in KINDS.values()
            for row in sample_data[kind.collection]
        ]
        assert rows_of(results) == expected
        assert len(results) == len(expected)
        pages = [q for c, q, _ in asc_api.requests if c == "allocations"]
        assert len(pages) == -(-len(sample_data["allocations"]) // 7)
        assert [q.get("cursor") for q in pages[:3]] == [None, "7", "14"]
        assert all(q["page_size"] == "7" for q in pages)

    def test_each_record_carries_the_watermark_it_reaches(self, asc_api: AscApi) -> None:
        results = pulled(source(asc_api, kinds=["contact"]))
        marks = [r.meta["watermark"] for r in results]
        assert marks == [r.version for r in results]
        assert [instant(m) for m in marks] == sorted(instant(m) for m in marks)
        assert results[-1].meta["page"] == -(-len(results) // 7)

    def test_watermarks_end_at_each_kinds_latest_change(
        self, asc_api: AscApi, sample_data: dict[str, list[dict[str, Any]]]
    ) -> None:
        pull = source(asc_api, kinds=["carer", "person"])
        list(pull.read())
        assert [k.name for k in pull.kinds] == ["person", "carer"]
        assert pull.watermarks == {
            "person": sample_data["persons"][-1]["updated_at"],
            "carer": sample_data["carers"][-1]["updated_at"],
        }

    def test_since_skips_older_records(
        self, asc_api: AscApi, sample_data: dict[str, list[dict[str, Any]]]
    ) -> None:
        rows = sample_data["contacts"]
        since = rows[len(rows) // 2]["updated_at"]
        results = pulled(source(asc_api, kinds=["contact"], since={"contact": since}))
        expected = [r["contact_id"] for r in rows if instant(r["updated_at"]) >= instant(since)]
        assert [r.id for r in results] == expected
        assert 0 < len(expected) < len(rows)
        assert all(q["since"] == since for _, q, _ in asc_api.requests)

    def test_resuming_from_a_committed_watermark_loses_nothing(self, asc_api: AscApi) -> None:
        everything = pulled(source(asc_api, kinds=["allocation"]))
        # Stop after 40 records, as if the process were killed, and resume from there.
        committed = everything[39].meta["watermark"]
        resumed = pulled(source(asc_api, kinds=["allocation"], since={"allocation": committed}))
        seen = {r.id for r in everything[:40]} | {r.id for r in resumed}
        assert seen == {r.id for r in everything}
        # since is inclusive: the committed record itself comes again (an idempotent upsert).
        assert everything[39].id in {r.id for r in resumed}

    def test_sends_the_bearer_token(self, asc_api: AscApi) -> None:
        list(source(asc_api, kinds=["safeguarding"], auth_token="t0ken").read())
        assert asc_api.requests[0][0] == "safeguarding"
        assert asc_api.requests[0][2]["Authorization"] == "Bearer t0ken"

    def test_uses_a_client_it_is_given_and_leaves_it_open(self, asc_api: AscApi) -> None:
        with httpx.Client(timeout=5) as client:
            pull = source(asc_api, kinds=["carer"], client=client)
            assert len(list(pull.read())) == 22
            assert not client.is_closed


class TestBadItems:
    def test_an_item_that_is_not_an_object_is_an_error_and_the_rest_go_on(
        self, asc_api: AscApi
    ) -> None:
        good = {"concern_id": "SGC1", "updated_at": "2026-05-02T12:15:00+01:00"}
        asc_api.queue("safeguarding", 200, {"items": [7, good], "next_cursor": None})
        error, record = list(source(asc_api, kinds=["safeguarding"]).read())
        assert isinstance(error, AdapterError)
        assert str(error) == "safeguarding page 1 item 1: expected a JSON object, got a number"
        assert error.raw == b"7"
        assert isinstance(record, SourceRecord)
        assert json.loads(record.raw) == good

    def test_an_item_without_an_id_does_not_move_the_watermark(self, asc_api: AscApi) -> None:
        first = {"concern_id": "SGC1", "updated_at": "2026-05-02T12:15:00+01:00"}
        no_id = {"updated_at": "2026-06-01T00:00:00+01:00"}
        last = {"concern_id": "SGC3", "updated_at": "2026-05-03T00:00:00+01:00"}
        asc_api.queue("safeguarding", 200, {"items": [first, no_id, last], "next_cursor": None})
        one, two, three = list(source(asc_api, kinds=["safeguarding"]).read())
        assert isinstance(one, SourceRecord)
        assert isinstance(two, AdapterError)
        assert two.field == "concern_id"
        assert isinstance(three, SourceRecord)
        # The later updated_at of the item without an id was not taken as the watermark.
        assert three.meta["watermark"] == last["updated_at"]

    def test_the_watermark_never_moves_back(self, asc_api: AscApi) -> None:
        later = {"concern_id": "SGC1", "updated_at": "2026-05-02T12:15:00+01:00"}
        # Earlier as an instant, though later as text.
        earlier = {"concern_id": "SGC2", "updated_at": "2026-05-02T13:00:00+05:00"}
        asc_api.queue("safeguarding", 200, {"items": [later, earlier], "next_cursor": None})
        a, b = pulled(source(asc_api, kinds=["safeguarding"]))
        assert a.meta["watermark"] == b.meta["watermark"] == later["updated_at"]


class TestRetries:
    def test_503_then_200_is_retried_after_a_jittered_backoff(self, asc_api: AscApi) -> None:
        asc_api.queue("carers", 503)
        sleeps = Sleeps()
        results = list(source(asc_api, sleeps, kinds=["carer"], backoff=0.2).read())
        assert len(rows_of(results)) == 22
        # Full jitter: random() (0.5 here) times the first backoff step.
        assert sleeps == [0.1]

    def test_backoff_doubles_up_to_its_cap(self, asc_api: AscApi) -> None:
        for _ in range(4):
            asc_api.queue("carers", 502)
        sleeps = Sleeps()
        pull = AscHttpSource(
            asc_api.base_url,
            kinds=["carer"],
            backoff=1.0,
            max_backoff=5.0,
            sleep=sleeps,
            random=lambda: 1.0,
        )
        assert len(list(pull.read())) == 22
        assert sleeps == [1.0, 2.0, 4.0, 5.0]

    def test_429_honours_retry_after(self, asc_api: AscApi) -> None:
        asc_api.queue("carers", 429, **{"Retry-After": "7"})
        sleeps = Sleeps()
        assert len(list(source(asc_api, sleeps, kinds=["carer"]).read())) == 22
        assert sleeps == [7.0]

    def test_retry_after_beyond_the_limit_gives_up(self, asc_api: AscApi) -> None:
        asc_api.queue("carers", 429, **{"Retry-After": "3600"})
        sleeps = Sleeps()
        with pytest.raises(AscFetchError, match="retry after 3600 s, longer than") as caught:
            list(source(asc_api, sleeps, kinds=["carer"], max_retry_after=60).read())
        assert caught.value.status == 429
        assert sleeps == []

    def test_5xx_beyond_max_retries_is_reported(self, asc_api: AscApi) -> None:
        for _ in range(3):
            asc_api.queue("persons", 500)
        sleeps = Sleeps()
        with pytest.raises(AscFetchError) as caught:
            list(source(asc_api, sleeps, max_retries=2).read())
        assert str(caught.value) == (
            "asc person page 1: HTTP 500 Internal Server Error; gave up after 3 attempts"
        )
        assert (caught.value.kind, caught.value.page, caught.value.status) == ("person", 1, 500)
        assert len(sleeps) == 2

    def test_connection_refused_is_retried_then_reported(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # The socket is closed and never listened on: connecting is refused.
        sleeps = Sleeps()
        pull = AscHttpSource(
            f"http://127.0.0.1:{port}", max_retries=3, sleep=sleeps, random=lambda: 0.5
        )
        with pytest.raises(AscFetchError, match="network error") as caught:
            list(pull.read())
        assert str(caught.value).startswith("asc person page 1: network error (ConnectError")
        assert str(caught.value).endswith("gave up after 4 attempts")
        assert len(sleeps) == 3

    def test_a_failure_on_a_later_page_retries_that_page_only(self, asc_api: AscApi) -> None:
        pull = source(asc_api, kinds=["carer"])
        results = pull.read()
        first = [next(results) for _ in range(7)]
        asc_api.queue("carers", 503)
        rest = list(results)
        assert len(first) + len(rest) == 22
        cursors = [q.get("cursor") for c, q, _ in asc_api.requests if c == "carers"]
        assert cursors == [None, "7", "7", "14", "21"]


class TestPermanentErrors:
    def test_404_is_a_clear_error_and_not_retried(self, asc_api: AscApi) -> None:
        sleeps = Sleeps()
        pull = AscHttpSource(f"{asc_api.base_url}/v2", sleep=sleeps)
        with pytest.raises(AscFetchError) as caught:
            list(pull.read())
        assert str(caught.value) == "asc person page 1: HTTP 404 Not Found; not retried"
        assert caught.value.origin == "person page 1"
        assert sleeps == []

    def test_malformed_json_is_a_clear_error(self, asc_api: AscApi) -> None:
        asc_api.queue("persons", 200, b'{"items": [')
        with pytest.raises(AscFetchError, match=r"^asc person page 1: malformed response \("):
            list(source(asc_api).read())

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ([], 'expected an object with an "items" array'),
            ({"items": {}}, 'expected an object with an "items" array'),
            ({"items": [], "next_cursor": 3}, '"next_cursor" must be a non-empty string or null'),
        ],
    )
    def test_a_body_of_the_wrong_shape_is_a_clear_error(
        self, asc_api: AscApi, body: Any, problem: str
    ) -> None:
        asc_api.queue("persons", 200, body)
        with pytest.raises(AscFetchError, match="malformed response") as caught:
            list(source(asc_api).read())
        assert problem in str(caught.value)

    def test_a_repeated_cursor_stops_the_kind(self, asc_api: AscApi) -> None:
        asc_api.queue("persons", 200, {"items": [], "next_cursor": "X"})
        asc_api.queue("persons", 200, {"items": [], "next_cursor": "X"})
        with pytest.raises(AscFetchError, match="page 2: the server returned the same cursor"):
            list(source(asc_api).read())

    def test_error_messages_never_hold_the_response_body(self, asc_api: AscApi) -> None:
        asc_api.queue("persons", 400, b'{"detail": "Ann Smith is unknown"}')
        with pytest.raises(AscFetchError) as caught:
            list(source(asc_api).read())
        assert "Ann" not in str(caught.value)
        assert caught.value.status == 400

    def test_unknown_kind_is_refused_with_the_known_ones(self) -> None:
        with pytest.raises(AdapterError, match="known kinds: person, contact"):
            AscHttpSource("http://127.0.0.1:9", kinds=["people"])


class TestMapExceptions:
    @pytest.mark.parametrize(
        ("raised", "retryable"),
        [
            (httpx.ConnectError("refused"), True),
            (httpx.ReadTimeout("slow"), True),
            (httpx.RemoteProtocolError("dropped"), True),
            (httpx.UnsupportedProtocol("ftp"), False),
            (httpx.InvalidURL("bad"), False),
        ],
    )
    def test_translates_httpx_errors(self, raised: Exception, retryable: bool) -> None:
        with pytest.raises(AscFetchError) as caught, map_exceptions(kind="carer", page=3):
            raise raised
        assert caught.value.retryable is retryable
        assert caught.value.__cause__ is raised
        assert str(caught.value).startswith("asc carer page 3: ")

    def test_leaves_other_exceptions_alone(self) -> None:
        with pytest.raises(KeyError), map_exceptions(kind="carer", page=1):
            raise KeyError("x")


class TestRetryAfter:
    NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("header", "seconds"),
        [
            ("120", 120.0),
            (" 0 ", 0.0),
            ("Sun, 01 Nov 2026 12:00:30 GMT", 30.0),
            ("Sun, 01 Nov 2026 11:00:00 GMT", 0.0),
            ("soon", None),
            ("-5", None),
            (None, None),
        ],
    )
    def test_parses_seconds_and_http_dates(self, header: str | None, seconds: float | None) -> None:
        assert retry_after_seconds(header, self.NOW) == seconds
