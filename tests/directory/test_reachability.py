"""Reachability: DST switches, Saturdays, Midsommarafton and closures, on the demo directory and in pure form."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from server.directory import hours as hrs
from tests.directory.conftest import HSL_NACKA, HT_NACKA, VC_NACKA, unit_id

WEEKDAYS = hrs.Span(1, 5, from_time=time(8), to_time=time(16, 30), holiday_rule="closed_on_holidays")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def reach(client, headers, hsa_unit, at: str, **params):
    response = await client.get(f"/api/v1/units/{hsa_unit}/reachability", params={"at": at, **params}, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def test_local_hours_follow_daylight_saving_time():
    weekdays = hrs.RouteHours(spans=[WEEKDAYS])
    # Friday before the spring switch (CET, UTC+1): 08:00 local is 07:00 UTC.
    assert not hrs.is_open(weekdays, utc("2026-03-27T06:59:00+00:00"))
    assert hrs.is_open(weekdays, utc("2026-03-27T07:00:00+00:00"))
    # Monday after the switch (CEST, UTC+2): 08:00 local is 06:00 UTC.
    assert hrs.is_open(weekdays, utc("2026-03-30T06:00:00+00:00"))
    assert not hrs.is_open(weekdays, utc("2026-03-30T05:59:00+00:00"))
    # The next opening after Saturday noon is Monday 08:00 CEST, across the switch night.
    assert hrs.next_opening(weekdays, utc("2026-03-28T12:00:00+01:00")) == utc("2026-03-30T06:00:00+00:00")
    # An all-day span lasts 23 hours on the spring day and 25 on the autumn day.
    always = hrs.RouteHours(spans=[hrs.Span(1, 7, all_day=True)])
    spring = hrs.open_intervals(always, utc("2026-03-29T00:00:00+01:00"), utc("2026-03-30T00:00:00+02:00"))
    autumn = hrs.open_intervals(always, utc("2026-10-25T00:00:00+02:00"), utc("2026-10-26T00:00:00+01:00"))
    assert [end - start for start, end in spring] == [timedelta(hours=23)]
    assert [end - start for start, end in autumn] == [timedelta(hours=25)]
    # A night span 22:00-07:00 across the autumn switch is 10 hours long.
    night = hrs.RouteHours(spans=[hrs.Span(6, 6, from_time=time(22), to_time=time(7))])
    intervals = hrs.open_intervals(night, utc("2026-10-24T12:00:00+02:00"), utc("2026-10-25T12:00:00+01:00"))
    assert [end - start for start, end in intervals] == [timedelta(hours=10)]


def test_swedish_holidays_include_de_facto_days():
    assert hrs.holiday_name(date(2026, 6, 19)) == "Midsommarafton"
    assert hrs.holiday_name(date(2026, 12, 24)) == "Julafton"
    assert hrs.holiday_name(date(2026, 12, 31)) == "Nyårsafton"
    assert hrs.holiday_name(date(2026, 6, 14)) is None  # an ordinary Sunday is not a holiday
    midsummer_eve = utc("2026-06-19T10:00:00+02:00")
    assert not hrs.is_open(hrs.RouteHours(spans=[WEEKDAYS]), midsummer_eve)
    normal = hrs.Span(1, 5, from_time=time(8), to_time=time(16))
    assert hrs.is_open(hrs.RouteHours(spans=[normal]), midsummer_eve)
    holidays_only = hrs.Span(1, 7, from_time=time(8), to_time=time(20), holiday_rule="holidays_only")
    assert hrs.is_open(hrs.RouteHours(spans=[holidays_only]), midsummer_eve)
    assert not hrs.is_open(hrs.RouteHours(spans=[holidays_only]), utc("2026-06-18T10:00:00+02:00"))


def test_date_bounded_span_and_validity():
    summer = hrs.Span(1, 5, from_time=time(9), to_time=time(12), from_date=date(2026, 7, 1), to_date=date(2026, 7, 31))
    route = hrs.RouteHours(spans=[summer])
    assert hrs.is_open(route, utc("2026-07-06T10:00:00+02:00"))
    assert not hrs.is_open(route, utc("2026-08-03T10:00:00+02:00"))
    ended = hrs.RouteHours(spans=[WEEKDAYS], valid_to=date(2026, 6, 30))
    assert not hrs.is_open(ended, utc("2026-07-01T10:00:00+02:00"))


async def test_weekend_discharge_routes_on_a_saturday_not_on_a_monday(client, demo, staff):
    home_care = await unit_id(demo, HT_NACKA)
    saturday = await reach(client, staff, home_care, "2026-06-13T10:00:00+02:00")
    assert saturday["reachable"] is True
    purposes = [route["purpose"] for route in saturday["routes"]]
    assert "weekend_discharge" in purposes
    assert [route["rank"] for route in saturday["routes"]] == sorted(route["rank"] for route in saturday["routes"])
    weekend = next(route for route in saturday["routes"] if route["purpose"] == "weekend_discharge")
    assert weekend["until"] == "2026-06-13T18:00:00Z"  # 20:00 CEST
    monday = await reach(client, staff, home_care, "2026-06-15T10:00:00+02:00")
    assert "weekend_discharge" not in [route["purpose"] for route in monday["routes"]]
    assert "discharge_planning" in [route["purpose"] for route in monday["routes"]]
    # Only the weekend route is asked for: none on Monday, with the next opening on Saturday 08:00.
    asked = await reach(client, staff, home_care, "2026-06-15T10:00:00+02:00", purpose="weekend_discharge")
    assert asked["reachable"] is False
    assert asked["next_opening"]["at"] == "2026-06-19T06:00:00Z"  # Midsommarafton counts as a holiday


async def test_midsommarafton_closes_weekday_hours_and_opens_holiday_routes(client, demo, staff):
    primary_care = await unit_id(demo, VC_NACKA)
    eve = await reach(client, staff, primary_care, "2026-06-19T10:00:00+02:00")
    assert eve["holiday"] == "Midsommarafton"
    assert eve["reachable"] is False
    # Closed Friday (eve), Saturday (Midsommardagen), Sunday: opens Monday 08:00 CEST.
    assert eve["next_opening"]["at"] == "2026-06-22T06:00:00Z"
    thursday = await reach(client, staff, primary_care, "2026-06-18T10:00:00+02:00")
    assert thursday["reachable"] is True
    assert thursday["routes"][0]["channel"] == "secure_message"
    hsl = await unit_id(demo, HSL_NACKA)
    hsl_eve = await reach(client, staff, hsl, "2026-06-19T10:00:00+02:00")
    assert [route["purpose"] for route in hsl_eve["routes"]] == ["weekend_discharge", "on_call"]


async def test_dst_switch_on_the_api(client, demo, staff):
    primary_care = await unit_id(demo, VC_NACKA)
    before = await reach(client, staff, primary_care, "2026-03-27T07:15:00+00:00")  # 08:15 CET
    assert before["reachable"] is True
    after = await reach(client, staff, primary_care, "2026-03-30T06:15:00+00:00")  # 08:15 CEST
    assert after["reachable"] is True
    assert after["local_time"] == "2026-03-30T08:15:00+02:00"
    early = await reach(client, staff, primary_care, "2026-03-30T05:45:00+00:00")  # 07:45 CEST
    assert early["reachable"] is False
    assert early["next_opening"]["at"] == "2026-03-30T06:00:00Z"
    saturday = await reach(client, staff, primary_care, "2026-03-28T12:00:00+01:00")
    assert saturday["next_opening"]["at"] == "2026-03-30T06:00:00Z"


async def test_unit_closure_makes_the_unit_unreachable(client, demo, admin, staff):
    hsl = await unit_id(demo, HSL_NACKA)
    closure = await client.post(
        f"/api/v1/units/{hsl}/closures",
        json={"starts_at": "2026-06-15T08:00:00+02:00", "ends_at": "2026-06-15T12:00:00+02:00", "reason": "Utbildning"},
        headers=admin,
    )
    assert closure.status == 201, await closure.text()
    during = await reach(client, staff, hsl, "2026-06-15T10:00:00+02:00")
    assert during["reachable"] is False
    assert during["routes"] == []
    assert during["closures"][0]["reason"] == "Utbildning"
    assert during["next_opening"]["at"] == "2026-06-15T10:00:00Z"  # 12:00 CEST
    later = await reach(client, staff, hsl, "2026-06-15T13:00:00+02:00")
    assert later["reachable"] is True
    # Closing a unit is a new version of it, in its history.
    history = await (await client.get(f"/api/v1/units/{hsl}/history", headers=staff)).json()
    assert history["versions"][-1]["diff"]["closures"][1][0]["reason"] == "Utbildning"
    # The messaging seam agrees: the inbox is closed during the closure.
    calendar = demo.calendar
    intervals = await calendar.open_intervals(hsl, utc("2026-06-15T00:00:00+02:00"), utc("2026-06-16T00:00:00+02:00"))
    assert intervals == [(utc("2026-06-15T12:00:00+02:00"), utc("2026-06-15T16:30:00+02:00"))]


async def test_calendar_seam_for_messaging(demo):
    calendar = demo.calendar
    home_care = await unit_id(demo, HT_NACKA)
    saturday = utc("2026-06-13T00:00:00+02:00")
    intervals = await calendar.open_intervals(home_care, saturday, saturday + timedelta(days=1))
    assert intervals == [(utc("2026-06-13T09:00:00+02:00"), utc("2026-06-13T15:00:00+02:00"))]
    routes = await calendar.escalation_routes(home_care, utc("2026-06-13T16:00:00+02:00"))
    assert [(route.purpose, route.channel) for route in routes] == [("weekend_discharge", "phone")]
    assert all(route.channel != "secure_message" for route in routes)
    # A unit without secure-message hours counts as always open.
    from tests.conftest import Actors

    bare = await Actors(demo).unit("Avdelning utan tider")
    assert await calendar.open_intervals(bare, saturday, saturday + timedelta(hours=3)) == [
        (saturday, saturday + timedelta(hours=3))
    ]


async def test_open_at_filter_lists_units_with_weekend_routes(client, demo, staff):
    response = await client.get(
        "/api/v1/units",
        params={"open_at": "2026-06-13T10:00:00+02:00", "purpose": "weekend_discharge", "municipality": "0182"},
        headers=staff,
    )
    assert response.status == 200
    page = await response.json()
    names = {item["name"] for item in page["items"]}
    assert names == {"Hemtjänst Nacka centrum", "Kommunal hälso- och sjukvård Nacka"}
    assert all(item["open_routes"][0]["purpose"] == "weekend_discharge" for item in page["items"])
    monday = await client.get(
        "/api/v1/units",
        params={"open_at": "2026-06-15T10:00:00+02:00", "purpose": "weekend_discharge", "municipality": "0182"},
        headers=staff,
    )
    assert (await monday.json())["items"] == []


async def test_times_at_the_edge_of_the_calendar_are_refused_with_a_clear_error(client, demo, staff):
    # Year 1 with a +01:02 offset is year 0 in UTC: Python cannot represent it (was a 500, found by schemathesis).
    home_care = await unit_id(demo, HT_NACKA)
    for url, params in [
        ("/api/v1/units", {"open_at": "0001-01-01T00:00:00+01:02", "purpose": "weekend_discharge"}),
        (f"/api/v1/units/{home_care}/reachability", {"at": "0001-01-01T00:00:02Z"}),
        (f"/api/v1/units/{home_care}/reachability", {"at": "9999-12-31T23:59:59-05:00"}),
    ]:
        response = await client.get(url, params=params, headers=staff)
        assert response.status == 422, await response.text()
        problem = await response.json()
        assert "between the years 1900 and 9000" in json.dumps(problem)


async def test_listing_with_open_routes_matches_the_published_schema_formats_included(client, demo, staff):
    """Opening hours are wall-clock times ("08:00:00", no offset): the OpenAPI spec must not call them
    RFC 3339 `time`, which needs an offset (schemathesis flagged every response that showed hours)."""
    import jsonschema

    spec = await (await client.get("/api/openapi.json")).json()
    response = await client.get(
        "/api/v1/units", params={"open_at": "2026-06-15T10:00:00+02:00", "municipality": "0182"}, headers=staff
    )
    page = await response.json()
    assert any(route["hours"] for item in page["items"] for route in item["open_routes"])
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/UnitPage", "components": spec["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    assert [error.message for error in validator.iter_errors(page)] == []
