"""The trend chart: items opened and closed per day, and the open backlog, as SVG or PNG.

Drawn on the server with matplotlib's Agg canvas (no display, no network, no fonts
fetched), from a `TrendView`: counts and dates only. A new `Figure` per chart, never
pyplot's global state, so charts drawn at once in threads do not mix.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from office.workqueue.views import TrendView

__all__ = ["trend_chart_png", "trend_chart_svg"]

_OPENED = "#c0392b"
_CLOSED = "#27ae60"
_BACKLOG = "#34495e"


def trend_chart_svg(trend: TrendView) -> str:
    """The chart as a standalone SVG document."""
    buffer = io.BytesIO()
    _draw(trend).savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue().decode("utf-8")


def trend_chart_png(trend: TrendView) -> bytes:
    """The chart as a PNG image (for mail, where SVG is not shown)."""
    buffer = io.BytesIO()
    _draw(trend).savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _draw(trend: TrendView) -> Figure:
    figure = Figure(figsize=(8, 3))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    days = [entry.day for entry in trend.days]
    positions = list(range(len(days)))
    width = 0.4
    axes.bar(
        [p - width / 2 for p in positions],
        [entry.opened for entry in trend.days],
        width,
        color=_OPENED,
        label="opened",
    )
    axes.bar(
        [p + width / 2 for p in positions],
        [entry.closed for entry in trend.days],
        width,
        color=_CLOSED,
        label="closed",
    )
    axes.plot(
        positions,
        [entry.open_at_end for entry in trend.days],
        color=_BACKLOG,
        linewidth=1.5,
        label="open at day end",
    )
    step = max(1, len(days) // 10)
    axes.set_xticks(positions[::step], [day.strftime("%b %d") for day in days[::step]])
    axes.tick_params(axis="x", labelsize=8)
    axes.set_ylim(bottom=0)
    median = trend.median_hours_to_close
    title = "Work items per day"
    if median is not None:
        title += f" (median time to close: {median:g} h)"
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="upper left", frameon=False)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout()
    return figure
