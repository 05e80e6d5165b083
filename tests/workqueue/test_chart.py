"""The trend chart: drawn on the server from counts, as SVG for the board and PNG for mail."""

from __future__ import annotations

from datetime import date, timedelta

from office.workqueue.chart import trend_chart_png, trend_chart_svg
from office.workqueue.views import DayCount, TrendView


def _trend(days: int, median: float | None = 5.5) -> TrendView:
    first = date(2026, 11, 2)
    return TrendView(
        tuple(DayCount(first + timedelta(days=n), n % 4, n % 3, 10 + n % 5) for n in range(days)),
        median,
        12,
        "America/Chicago",
    )


def test_the_svg_is_one_document_with_the_median_in_its_title() -> None:
    svg = trend_chart_svg(_trend(30))
    assert svg.lstrip().startswith("<?xml")
    assert svg.count("<svg") == 1
    assert "median time to close: 5.5 h" in svg
    assert "Nov 02" in svg


def test_the_png_is_an_image_and_drawing_the_same_counts_gives_the_same_bytes() -> None:
    png = trend_chart_png(_trend(30, None))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert trend_chart_png(_trend(30, None)) == png
    assert trend_chart_png(_trend(1)) != png
