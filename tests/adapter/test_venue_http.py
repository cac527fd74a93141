"""The venue clients' HTTP layer: a 2xx body of the wrong shape is a failure, not an empty page."""

from __future__ import annotations

import httpx
import orjson
import pytest

from exporter.config import validate_settings
from exporter.errors import VenueUnavailable
from exporter.venues.polymarket.client import PolymarketClient


@pytest.mark.parametrize("body", [{"error": "busy"}, "ok", None, 3])
async def test_a_books_reply_of_the_wrong_shape_is_counted_and_retried(body: object) -> None:
    book = {"asset_id": "1", "bids": [], "asks": []}
    answers = [body, body, [book]]

    client = _answering(answers)
    try:
        books, _ = await client.books(["1"])
        # The retry's answer, each book left as bytes for the parser.
        assert [orjson.loads(bytes(raw)) for raw in books] == [book]
        assert client.http.stats[("clob_books", "invalid_body")] == 2
        answers[:] = [body] * 10
        with pytest.raises(VenueUnavailable, match=r"(?i)expected `array`"):
            await client.books(["1"])
    finally:
        await client.aclose()


@pytest.mark.parametrize("body", [{"error": "busy"}, {"events": "none"}, [], None])
async def test_an_events_page_its_envelope_refuses_is_counted_and_retried(body: object) -> None:
    good = {"events": [{"id": "1", "markets": []}], "next_cursor": None}
    answers = [body, good]

    client = _answering(answers)
    try:
        page, _ = await client.events_page(None)
        assert [bytes(event) for event in page.events] == [b'{"id":"1","markets":[]}']
        assert client.http.stats[("gamma_events", "invalid_body")] == 1
    finally:
        await client.aclose()


def _answering(answers: list[object]) -> PolymarketClient:
    """A Polymarket client whose every request is answered 200 with the next of ``answers``."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=orjson.dumps(answers.pop(0)))

    fast = {"wait_initial": 0.01, "wait_max": 0.02}
    settings = validate_settings({"venues": {"polymarket": {"retry": fast}}})
    return PolymarketClient(settings.venues.polymarket, transport=httpx.MockTransport(handler))
