"""Carbon Aware SDK-compatible endpoints over computenet's signals, under ``/v1/carbon-aware``.

The Green Software Foundation's Carbon Aware SDK Web API serves these at its root; here they
sit under ``/v1/carbon-aware`` beside the rest of the API, so a client of the SDK points its
base URL at ``http://HOST:PORT/v1/carbon-aware`` and calls the same paths with the same
parameters and gets the same JSON shapes (``CarbonAwareController`` of the SDK):

* ``GET /emissions/bylocation?location=&time=&toTime=&durationMinutes=`` and
  ``GET /emissions/bylocations?location=a&location=b&...`` — ``[{location, time, rating,
  duration}]``, one point per hour of ``[time, toTime)`` and location;
* ``GET /emissions/bylocations/best`` — the point(s) with the lowest rating among those;
* ``GET /emissions/forecasts/current?location=&dataStartAt=&dataEndAt=&windowSize=`` —
  ``[{generatedAt, requestedAt, location, dataStartAt, dataEndAt, windowSize,
  optimalDataPoints, forecastData}]``, data points ``{location, timestamp, duration, value}``;
* ``GET /locations`` — ``{name: {Latitude, Longitude, Name}}``.

Locations are site ids. ``rating``/``value`` is the carbon intensity (gCO2/kWh) computenet
plans with at that site: its grid's (posted feeds applied) mixed with its applied direct green
supply; an average intensity, not a marginal one. When a location's carbon is a modelled
hourly series the response carries ``X-Computenet-Carbon: modelled``. Defaults: no ``time``
means the current hour; no ``toTime`` one hour after ``time``; a span is at most 366 days. A
forecast is generated at the start of the current hour and covers ``FORECAST_HORIZON_H``
hours: the signals the engine plans with, no separate forecast model. Empty answers are
``204 No Content`` as in the SDK. Reads need a token like every other read endpoint (the SDK's
generated clients send a bearer header); bad input is computenet's 422 JSON error naming the
parameter (the SDK answers 400; its clients treat both as a client error).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from computenet.api.deps import principal, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.control import feeds
from computenet.errors import InputError
from computenet.model import HOUR_S
from computenet.signals.modelled import is_modelled
from computenet.store.repository import Principal, now_s

router = APIRouter(prefix="/v1/carbon-aware", tags=["carbon-aware"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]
Locations = Annotated[
    list[str], Query(alias="location", min_length=1, description="site ids (repeat the parameter)")
]
Location = Annotated[str, Query(description="a site id")]
When = Annotated[
    str | None,
    Query(
        description="ISO 8601 time, UTC unless it has an offset",
        json_schema_extra={"format": "date-time"},
    ),
]
MAX_MINUTES = 366 * 24 * 60
Minutes = Annotated[int, Query(ge=0, le=MAX_MINUTES, description="minutes; 0: one hour")]
Window = Annotated[
    int | None, Query(ge=1, le=MAX_MINUTES, description="minutes; default one data point (60)")
]

MAX_SPAN_S = 366 * 24 * HOUR_S
FORECAST_HORIZON_H = 48
MODEL_HEADER = "X-Computenet-Carbon"


def parse_time(text: str | None, field: str) -> int | None:
    """An ISO 8601 time (UTC when it has no offset; a date alone is its midnight)."""
    if text is None or text == "":
        return None
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{text!r} is not an ISO 8601 time",
            where=field,
            fix=f"e.g. {field}=2023-07-03T14:00:00Z",
        ) from None
    return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp())


def iso(t_s: int) -> str:
    return dt.datetime.fromtimestamp(t_s, dt.UTC).isoformat()


def timespan(seconds: int) -> str:
    """A duration as .NET writes a ``TimeSpan`` in JSON (``01:00:00``, ``1.00:00:00``)."""
    days, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{days}." if days else "") + f"{h:02d}:{m:02d}:{s:02d}"


def _carbon_signals(request: Request, locations: list[str]) -> dict[str, Any]:
    st = state(request)
    if not locations:
        raise InputError("give at least one location", where="location", fix="?location=SITE_ID")
    if st.network is None:
        raise InputError("the service has no network loaded", where="location")
    network, forecasts = feeds.apply(st.network, st.repo.site_feeds())
    by_id = {s.id: s for s in network.sites}
    out = {}
    for loc in locations:
        if loc not in by_id:
            raise InputError(
                f"unknown location {loc!r}",
                where="location",
                fix=f"use a site id: {', '.join(sorted(by_id))}",
            )
        fc = forecasts.get(loc)
        out[loc] = fc.carbon if fc else by_id[loc].carbon
    return out


def _label(response: Response, signals: dict[str, Any]) -> None:
    if any(is_modelled(s) for s in signals.values()):
        response.headers[MODEL_HEADER] = "modelled"


def _span(time: str | None, to_time: str | None) -> tuple[int, int]:
    start = parse_time(time, "time")
    if start is None:
        start = now_s() // HOUR_S * HOUR_S
    end = parse_time(to_time, "toTime")
    if end is None:
        end = start + HOUR_S
    if end <= start:
        raise InputError("toTime is not after time", where="toTime", fix="give a later toTime")
    if end - start > MAX_SPAN_S:
        raise InputError(
            "the span from time to toTime is over 366 days",
            where="toTime",
            fix="ask for 366 days or less per request",
        )
    return start, end


def emissions(
    signals: dict[str, Any], start: int, end: int, duration_s: int
) -> list[dict[str, Any]]:
    """One point per location and hour that starts in ``[floor_h(start), end)``: the mean
    intensity over ``[t, t + duration_s)`` (an hour unless ``durationMinutes`` says)."""
    first = start // HOUR_S * HOUR_S
    points = []
    for loc, carbon in signals.items():
        for t in range(first, end, HOUR_S):
            points.append(
                {
                    "location": loc,
                    "time": iso(t),
                    "rating": float(carbon.mean(t, t + duration_s)),
                    "duration": timespan(duration_s),
                }
            )
    return points


def _duration(minutes: int) -> int:
    if minutes < 0:
        raise InputError(
            "durationMinutes is below 0", where="durationMinutes", fix="give 0 or more"
        )
    return minutes * 60 if minutes > 0 else HOUR_S


def _answer(points: list[dict[str, Any]], signals: dict[str, Any]) -> Response:
    if not points:
        return Response(status_code=204)
    response = JSONResponse(points)
    _label(response, signals)
    return response


@router.get("/emissions/bylocation", response_model=None)
def by_location(
    request: Request,
    who: Who,
    location: Location,
    time: When = None,
    toTime: When = None,
    durationMinutes: Minutes = 0,
) -> Response:
    """Carbon intensity per hour at one location (the SDK's
    ``GetEmissionsDataForLocationByTime``)."""
    signals = _carbon_signals(request, [location])
    start, end = _span(time, toTime)
    return _answer(emissions(signals, start, end, _duration(durationMinutes)), signals)


@router.get("/emissions/bylocations", response_model=None)
def by_locations(
    request: Request,
    who: Who,
    location: Locations,
    time: When = None,
    toTime: When = None,
    durationMinutes: Minutes = 0,
) -> Response:
    """Carbon intensity per hour at each location."""
    signals = _carbon_signals(request, location)
    start, end = _span(time, toTime)
    return _answer(emissions(signals, start, end, _duration(durationMinutes)), signals)


@router.get("/emissions/bylocations/best", response_model=None)
def best(
    request: Request,
    who: Who,
    location: Locations,
    time: When = None,
    toTime: When = None,
    durationMinutes: Minutes = 0,
) -> Response:
    """The point(s) with the lowest intensity over every location and hour asked for."""
    signals = _carbon_signals(request, location)
    start, end = _span(time, toTime)
    points = emissions(signals, start, end, _duration(durationMinutes))
    if points:
        low = min(p["rating"] for p in points)
        points = [p for p in points if p["rating"] <= low + 1e-9]
    return _answer(points, signals)


def forecast(
    loc: str,
    carbon: Any,
    now: int,
    data_start: int | None,
    data_end: int | None,
    window_min: int | None,
) -> dict[str, Any]:
    """The SDK's ``EmissionsForecastDTO`` for one location: hourly points from the start of
    the current hour over ``FORECAST_HORIZON_H``, scoped to ``[dataStartAt, dataEndAt]``,
    each the mean over ``windowSize`` minutes from its time; the optimal point(s) the lowest."""
    generated = now // HOUR_S * HOUR_S
    horizon_end = generated + FORECAST_HORIZON_H * HOUR_S
    start = generated if data_start is None else data_start
    end = horizon_end if data_end is None else data_end
    if not generated <= start < horizon_end:
        raise InputError(
            f"dataStartAt is outside the current forecast [{iso(generated)}, {iso(horizon_end)})",
            where="dataStartAt",
            fix="give a time inside the forecast, or leave it out",
        )
    if not start < end <= horizon_end:
        raise InputError(
            f"dataEndAt is not after dataStartAt and within the forecast (to {iso(horizon_end)})",
            where="dataEndAt",
            fix="give a later time inside the forecast, or leave it out",
        )
    window_s = HOUR_S if window_min is None else window_min * 60
    if window_s <= 0:
        raise InputError(
            "windowSize is not above 0", where="windowSize", fix="give minutes, e.g. 60"
        )
    first = start // HOUR_S * HOUR_S
    points: list[dict[str, Any]] = [
        {
            "location": loc,
            "timestamp": iso(t),
            "duration": window_s // 60,
            "value": float(carbon.mean(t, t + window_s)),
        }
        for t in range(first, end, HOUR_S)
        if t + window_s <= max(end, first + HOUR_S)
    ]
    low = min((p["value"] for p in points), default=None)
    return {
        "generatedAt": iso(generated),
        "requestedAt": iso(now),
        "location": loc,
        "dataStartAt": iso(start),
        "dataEndAt": iso(end),
        "windowSize": window_s // 60,
        "optimalDataPoints": [p for p in points if low is not None and p["value"] <= low + 1e-9],
        "forecastData": points,
    }


@router.get("/emissions/forecasts/current", response_model=None)
def forecasts_current(
    request: Request,
    who: Who,
    location: Locations,
    dataStartAt: When = None,
    dataEndAt: When = None,
    windowSize: Window = None,
) -> Response:
    """The current forecast per location with its optimal window (the SDK's
    ``GetCurrentForecastData``)."""
    signals = _carbon_signals(request, location)
    now = now_s()
    start = parse_time(dataStartAt, "dataStartAt")
    end = parse_time(dataEndAt, "dataEndAt")
    out = [forecast(loc, c, now, start, end, windowSize) for loc, c in signals.items()]
    response = JSONResponse(out)
    _label(response, signals)
    return response


@router.get("/locations")
def locations(request: Request, who: Who) -> dict[str, Any]:
    """Every location (site) with its coordinates, as the SDK's ``/locations`` lists them."""
    st = state(request)
    sites = st.network.sites if st.network is not None else ()
    return {s.id: {"Latitude": s.latitude, "Longitude": s.longitude, "Name": s.id} for s in sites}
