"""``current_datetime``: the date and time now in a time zone, and its guide.

The guide's grammar offers only the IANA zones whose city, or a well-known
place in :data:`PLACES`, the question names; UTC when it names none.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from langchain_core.tools import tool

from llmapp.tools.base import ToolError, ToolGuide, guided


@tool
def current_datetime(timezone: str = "UTC") -> str:
    """The current date and time in an IANA time zone such as "Europe/Oslo"
    or "America/New_York" (default UTC)."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"Unknown time zone {timezone!r}: use an IANA name such as "
                        "Europe/Oslo.") from None
    now = datetime.now(zone)
    return now.strftime(f"%A %d %B %Y, %H:%M:%S ({zone.key}, UTC%z)")


PLACES = {
    "san francisco": "America/Los_Angeles", "california": "America/Los_Angeles",
    "seattle": "America/Los_Angeles", "boston": "America/New_York",
    "washington": "America/New_York", "miami": "America/New_York", "texas": "America/Chicago",
    "beijing": "Asia/Shanghai", "china": "Asia/Shanghai", "india": "Asia/Kolkata",
    "delhi": "Asia/Kolkata", "mumbai": "Asia/Kolkata", "bangalore": "Asia/Kolkata",
    "japan": "Asia/Tokyo", "korea": "Asia/Seoul", "england": "Europe/London",
    "uk": "Europe/London", "britain": "Europe/London", "france": "Europe/Paris",
    "germany": "Europe/Berlin", "spain": "Europe/Madrid", "italy": "Europe/Rome",
    "norway": "Europe/Oslo", "sweden": "Europe/Stockholm", "brazil": "America/Sao_Paulo",
    "australia": "Australia/Sydney", "new zealand": "Pacific/Auckland",
    "egypt": "Africa/Cairo", "kenya": "Africa/Nairobi", "nigeria": "Africa/Lagos",
    "gmt": "Etc/GMT", "utc": "UTC",
}
"""Places people name that are not the city of an IANA zone."""


@functools.cache
def _zones_by_place() -> dict[str, str]:
    zones = {}
    for key in available_timezones():
        if "/" in key and not key.startswith(("Etc/", "SystemV/", "US/")):
            zones.setdefault(key.rsplit("/", 1)[1].replace("_", " ").lower(), key)
    zones.update(PLACES)
    return zones


def zone_candidates(question: str) -> list[str]:
    """IANA zones for the places ``question`` names, in the order named;
    ``["UTC"]`` when it names none. Never empty."""
    text = question.lower()
    found = []
    for place, zone in _zones_by_place().items():
        match = re.search(rf"\b{re.escape(place)}\b", text)
        if match:
            found.append((match.start(), zone))
    return list(dict.fromkeys(zone for _, zone in sorted(found))) or ["UTC"]


def _phrases(result: str, question: str) -> list[str]:
    """"Monday 23 November 2026, 11:42:08 (...)" -> ["11:42", "Monday 23 November 2026",
    "23 November 2026", "Monday"]."""
    day, _, rest = result.partition(", ")
    phrases = [rest[:5]] if re.match(r"\d\d:\d\d", rest) else []
    return [*phrases, day, day.partition(" ")[2], day.partition(" ")[0]]


def _narrow(question: str) -> dict[str, dict]:
    return {"timezone": {"enum": zone_candidates(question)}}


guided(current_datetime, ToolGuide(
    examples=(
        ("What time is it in Tokyo?", {"timezone": "Asia/Tokyo"}),
        ("What's the date today?", {"timezone": "UTC"}),
        ("What day of the week is it?", {"timezone": "UTC"}),
        ("Current time in New York, please", {"timezone": "America/New_York"}),
        ("Is it morning in London right now?", {"timezone": "Europe/London"}),
        ("What year is it?", {"timezone": "UTC"}),
    ),
    narrow=_narrow, result_is_answer=True, answer_phrases=_phrases,
    state=lambda args, result: f"It is {result}."))
