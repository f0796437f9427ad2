import { useEffect, useState } from "preact/hooks";
import { ErrorNote, Loading, MUNICIPALITIES, municipalityName, PageHeading, RouteValue, UNIT_TYPES, useAsync, useDebounced } from "../components";
import { comingDays, formatDay, fromStockholm, QUARTER_HOURS } from "../calendar";
import { formatDateTime, formatTime, translateMaybe, useLang, useT } from "../i18n";
import { hashParams, navigate } from "../router";
import { createConversation, createMeeting, getReachability, getUnit, meetingHref, searchUnits } from "../services";
import { isAdmin, sessionStore, unitStore } from "../session";
import { useStore } from "../store";
import type { Meeting, TimeSpan, Unit, UnitSummary } from "../types";
import { IcsLink } from "./Meetings";

export function unitTypeLabel(lang: "sv" | "en", type: string): string {
  return translateMaybe(lang, `type_${type}`, type);
}

function orgName(unit: UnitSummary | Unit): string {
  return "organisation_name" in unit ? unit.organisation_name : (unit.organisation?.name ?? "");
}

export function DirectoryView() {
  const t = useT();
  const lang = useLang();
  const initial = hashParams();
  const [q, setQ] = useState(initial.get("q") ?? "");
  const [type, setType] = useState(initial.get("type") ?? "");
  const [municipality, setMunicipality] = useState(initial.get("municipality") ?? "");
  const [openNow, setOpenNow] = useState(initial.get("open") === "1");
  const debounced = useDebounced(q, 200);
  const [extra, setExtra] = useState<UnitSummary[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [moreError, setMoreError] = useState<unknown>(null);
  const results = useAsync(
    (signal) => searchUnits({ q: debounced.trim(), type, municipality, openNow }, signal),
    [debounced, type, municipality, openNow],
  );

  useEffect(() => {
    setExtra([]);
    setCursor(results.data?.next_cursor ?? null);
  }, [results.data]);

  useEffect(() => {
    // Keep the search in the address so Back returns to the same results.
    const params = new URLSearchParams();
    if (debounced) params.set("q", debounced);
    if (type) params.set("type", type);
    if (municipality) params.set("municipality", municipality);
    if (openNow) params.set("open", "1");
    const text = params.toString();
    history.replaceState(null, "", `#/directory${text ? `?${text}` : ""}`);
  }, [debounced, type, municipality, openNow]);

  async function loadMore() {
    if (!cursor) return;
    try {
      const page = await searchUnits({ q: debounced.trim(), type, municipality, openNow, cursor });
      setExtra((items) => [...items, ...page.items]);
      setCursor(page.next_cursor ?? null);
    } catch (error) {
      setMoreError(error);
    }
  }

  const items = [...(results.data?.items ?? []), ...extra];
  return (
    <div class="directory">
      <PageHeading>{t("directoryTitle")}</PageHeading>
      <form class="search-form" role="search" onSubmit={(event) => event.preventDefault()}>
        <div class="field field-grow">
          <label for="unit-search">{t("search")}</label>
          <input id="unit-search" type="search" value={q} autoComplete="off" aria-describedby="unit-search-hint" onInput={(event) => setQ((event.target as HTMLInputElement).value)} />
          <p id="unit-search-hint" class="hint">
            {t("searchHint")}
          </p>
        </div>
        <div class="field">
          <label for="filter-municipality">{t("filterMunicipality")}</label>
          <select id="filter-municipality" value={municipality} onChange={(event) => setMunicipality((event.target as HTMLSelectElement).value)}>
            <option value="">{t("all")}</option>
            {MUNICIPALITIES.map(([code, name]) => (
              <option key={code} value={code}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-type">{t("filterType")}</label>
          <select id="filter-type" value={type} onChange={(event) => setType((event.target as HTMLSelectElement).value)}>
            <option value="">{t("all")}</option>
            {UNIT_TYPES.map((value) => (
              <option key={value} value={value}>
                {unitTypeLabel(lang, value)}
              </option>
            ))}
          </select>
        </div>
        <label class="checkbox">
          <input type="checkbox" checked={openNow} onChange={(event) => setOpenNow((event.target as HTMLInputElement).checked)} /> {t("filterOpenNow")}
        </label>
      </form>
      <ErrorNote error={results.error} retry={results.reload} />
      <p class="result-count" role="status" aria-live="polite">
        {results.loading ? t("loading") : `${items.length} ${t("results")}`}
      </p>
      {!results.loading && items.length === 0 && !results.error && <p>{t("noResults")}</p>}
      <ul class="unit-list" data-testid="unit-results">
        {items.map((unit) => (
          <li key={unit.id} class="unit-item">
            <a href={`#/directory/units/${unit.id}`} class="unit-link">
              {unit.name}
            </a>
            <span class="unit-meta">
              {unitTypeLabel(lang, unit.unit_type)}
              {orgName(unit) && ` · ${orgName(unit)}`}
              {unit.municipality_code && ` · ${unit.municipality_name ?? municipalityName(unit.municipality_code)}`}
            </span>
            {(unit.open_routes?.length ?? 0) > 0 && <span class="badge badge-open">{t("reachableNow")}</span>}
          </li>
        ))}
      </ul>
      {cursor && (
        <button type="button" onClick={() => void loadMore()}>
          {t("loadMore")}
        </button>
      )}
      <ErrorNote error={moreError} />
    </div>
  );
}

const DAY_NAMES_SV = ["mån", "tis", "ons", "tor", "fre", "lör", "sön"];
const DAY_NAMES_EN = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

function dayRange(names: string[], from: number, to: number): string {
  return from === to ? names[from - 1] : `${names[from - 1]}–${names[to - 1]}`;
}

export function hoursText(lang: "sv" | "en", hours: TimeSpan[] | undefined): string {
  if (!hours || hours.length === 0) return lang === "sv" ? "Alltid" : "Always";
  const names = lang === "sv" ? DAY_NAMES_SV : DAY_NAMES_EN;
  return hours
    .map((span) => {
      const time = span.all_day ? (lang === "sv" ? "hela dygnet" : "all day") : `${(span.from_time ?? "").slice(0, 5)}–${(span.to_time ?? "").slice(0, 5)}`;
      const rule =
        span.holiday_rule === "closed_on_holidays" ? (lang === "sv" ? " (ej helgdag)" : " (not on holidays)") : span.holiday_rule === "holidays_only" ? (lang === "sv" ? " (helgdagar)" : " (holidays)") : "";
      return `${dayRange(names, span.from_day, span.to_day)} ${time}${rule}`;
    })
    .join("; ");
}

function addressText(address: Unit["address"]): string {
  if (!address) return "";
  return [address.street, [address.postal_code, address.town].filter(Boolean).join(" ")].filter(Boolean).join(", ");
}

/** More units to take part (e.g. primary care and home care beside the municipality): search, add, remove. */
export function MoreUnits({ chosen, onChange, exclude, legend, idBase }: { chosen: UnitSummary[]; onChange: (units: UnitSummary[]) => void; exclude: string[]; legend?: string; idBase?: string }) {
  const t = useT();
  const [q, setQ] = useState("");
  const debounced = useDebounced(q.trim(), 200);
  const results = useAsync((signal) => (debounced.length >= 2 ? searchUnits({ q: debounced, limit: 5 }, signal) : Promise.resolve(null)), [debounced]);
  const options = (results.data?.items ?? []).filter((u) => !exclude.includes(u.id) && !chosen.some((c) => c.id === u.id));
  return (
    <fieldset class="more-units">
      <legend>{legend ?? t("moreUnits")}</legend>
      {chosen.length > 0 && (
        <ul class="chosen-files" data-testid="more-units">
          {chosen.map((u) => (
            <li key={u.id}>
              {u.name}
              <button type="button" aria-label={`${t("removeUnit")}: ${u.name}`} onClick={() => onChange(chosen.filter((c) => c.id !== u.id))}>
                {t("removeUnit")}
              </button>
            </li>
          ))}
        </ul>
      )}
      <div class="field">
        <label for={idBase ?? `more-units-${exclude[0] ?? "new"}`}>{t("searchUnitToAdd")}</label>
        <input id={idBase ?? `more-units-${exclude[0] ?? "new"}`} type="search" value={q} onInput={(event) => setQ((event.target as HTMLInputElement).value)} />
      </div>
      {options.length > 0 && (
        <ul class="chosen-files">
          {options.map((u) => (
            <li key={u.id}>
              {u.name}
              <button
                type="button"
                aria-label={`${t("addUnit")}: ${u.name}`}
                onClick={() => {
                  onChange([...chosen, u]);
                  setQ("");
                }}
              >
                {t("addUnit")}
              </button>
            </li>
          ))}
        </ul>
      )}
    </fieldset>
  );
}

function StartConversation({ unit }: { unit: Unit }) {
  const t = useT();
  const session = useStore(sessionStore);
  const selected = useStore(unitStore);
  const [subject, setSubject] = useState("");
  const [caseRef, setCaseRef] = useState("");
  const [fromUnit, setFromUnit] = useState(selected ?? "");
  const [more, setMore] = useState<UnitSummary[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (session.status !== "ready" || session.me.units.length === 0) return <p class="hint">{t("noUnits")}</p>;
  const units = session.me.units;
  return (
    <form
      class="card form"
      aria-labelledby="start-conversation-heading"
      onSubmit={(event) => {
        event.preventDefault();
        setBusy(true);
        createConversation({ subject, case_ref: caseRef, from_unit_id: fromUnit || units[0].unit_id, unit_ids: [unit.id, ...more.map((u) => u.id)] })
          .then((conversation) => navigate(`/conversations/${conversation.id}`))
          .catch((err: unknown) => setError(err))
          .finally(() => setBusy(false));
      }}
    >
      <h2 id="start-conversation-heading">{t("startConversation")}</h2>
      <div class="field">
        <label for="conv-subject">{t("subject")}</label>
        <input id="conv-subject" required maxLength={200} value={subject} onInput={(event) => setSubject((event.target as HTMLInputElement).value)} />
      </div>
      <div class="field">
        <label for="conv-case">{t("caseRef")}</label>
        <input id="conv-case" maxLength={80} value={caseRef} onInput={(event) => setCaseRef((event.target as HTMLInputElement).value)} />
      </div>
      {units.length > 1 && (
        <div class="field">
          <label for="conv-from">{t("fromUnit")}</label>
          <select id="conv-from" value={fromUnit} onChange={(event) => setFromUnit((event.target as HTMLSelectElement).value)}>
            {units.map((u) => (
              <option key={u.unit_id} value={u.unit_id}>
                {u.unit_name}
              </option>
            ))}
          </select>
        </div>
      )}
      <MoreUnits chosen={more} onChange={setMore} exclude={[unit.id, ...units.map((u) => u.unit_id)]} />
      <ErrorNote error={error} />
      <button type="submit" class="button-primary" disabled={busy || !subject.trim()}>
        {t("startConversation")}
      </button>
    </form>
  );
}

/** Book a meeting: a Swedish day and time choice (Stockholm time, whatever the browser's locale and zone);
 * once booked the form gives way to the confirmation, so a second click cannot book twice. */
export function StartMeeting({ unitIds, conversationId = null }: { unitIds: string[]; conversationId?: string | null }) {
  const t = useT();
  const lang = useLang();
  const selected = useStore(unitStore);
  const [days] = useState(() => comingDays(90));
  const [title, setTitle] = useState("");
  const [day, setDay] = useState(days[1]);
  const [time, setTime] = useState("09:00");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<Meeting | null>(null);
  const [duration, setDuration] = useState(60);
  const [more, setMore] = useState<UnitSummary[]>([]);
  const headingId = conversationId ? "start-meeting-heading-conversation" : "start-meeting-heading";

  if (done) {
    return (
      <section class="card" aria-labelledby={headingId} data-testid="meeting-booked">
        <h2 id={headingId}>{t("meetingCreated")}</h2>
        <p>
          <strong>{done.title}</strong>, {formatDateTime(done.starts_at, lang)}
        </p>
        <p class="actions">
          <a class="button button-primary" href={meetingHref(done)}>
            {t("joinMeeting")}
          </a>
          <IcsLink meeting={done} />
          <a class="button" href={`#/meetings/${done.id}`}>
            {t("meetingDetails")}
          </a>
        </p>
      </section>
    );
  }
  return (
    <form
      class="card form"
      aria-labelledby={headingId}
      onSubmit={(event) => {
        event.preventDefault();
        if (busy) return;
        setBusy(true);
        setError(null);
        createMeeting({ title, starts_at: fromStockholm(day, time).toISOString(), duration_minutes: duration, organiser_unit_id: selected, unit_ids: [...unitIds, ...more.map((u) => u.id)].filter((id) => id !== selected), conversation_id: conversationId })
          .then((meeting) => setDone(meeting))
          .catch((err: unknown) => setError(err))
          .finally(() => setBusy(false));
      }}
    >
      <h2 id={headingId}>{t("startMeeting")}</h2>
      <div class="field">
        <label for="meeting-title">{t("meetingTitle")}</label>
        <input id="meeting-title" required maxLength={200} value={title} onInput={(event) => setTitle((event.target as HTMLInputElement).value)} />
      </div>
      <div class="toolbar">
        <div class="field">
          <label for="meeting-day">{t("meetingDay")}</label>
          <select id="meeting-day" value={day} onChange={(event) => setDay((event.target as HTMLSelectElement).value)}>
            {days.map((value) => (
              <option key={value} value={value}>
                {formatDay(value, lang)}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="meeting-time">{t("meetingTime")}</label>
          <select id="meeting-time" value={time} onChange={(event) => setTime((event.target as HTMLSelectElement).value)}>
            {QUARTER_HOURS.map((value) => (
              <option key={value} value={value}>
                {value}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="meeting-duration">{t("durationMinutes")}</label>
          <input id="meeting-duration" type="number" min={5} max={720} step={5} value={duration} onInput={(event) => setDuration(Number((event.target as HTMLInputElement).value))} />
        </div>
      </div>
      <p class="hint">{t("stockholmTime")}</p>
      <MoreUnits chosen={more} onChange={setMore} exclude={[...unitIds, ...(selected ? [selected] : [])]} />
      <ErrorNote error={error} />
      <button type="submit" class="button-primary" disabled={!title.trim() || busy}>
        {busy ? t("booking") : t("startMeeting")}
      </button>
    </form>
  );
}

export function UnitPage({ id }: { id: string }) {
  const t = useT();
  const lang = useLang();
  const session = useStore(sessionStore);
  const unit = useAsync((signal) => getUnit(id, signal), [id]);
  const reach = useAsync((signal) => getReachability(id, signal), [id]);
  const [panel, setPanel] = useState<"none" | "conversation" | "meeting">("none");

  if (unit.error) return <ErrorNote error={unit.error} retry={unit.reload} />;
  if (!unit.data) return <Loading />;
  const u = unit.data.unit;
  const routes = u.routes ?? [];
  const reachable = reach.data ? reach.data.reachable : null;
  const me = session.status === "ready" ? session.me : null;
  return (
    <div class="unit-page">
      <p class="breadcrumb">
        <a href="#/directory">{t("directoryTitle")}</a>
      </p>
      <PageHeading>{u.name}</PageHeading>
      <dl class="facts">
        <dt>{t("unitType")}</dt>
        <dd>{unitTypeLabel(lang, u.unit_type)}</dd>
        {orgName(u) && (
          <>
            <dt>{t("organisation")}</dt>
            <dd>{orgName(u)}</dd>
          </>
        )}
        {u.municipality_code && (
          <>
            <dt>{t("filterMunicipality")}</dt>
            <dd>{municipalityName(u.municipality_code)}</dd>
          </>
        )}
        {u.hsa_id && (
          <>
            <dt>{t("hsaId")}</dt>
            <dd>{u.hsa_id}</dd>
          </>
        )}
        {addressText(u.address) && (
          <>
            <dt>{t("address")}</dt>
            <dd>{addressText(u.address)}</dd>
          </>
        )}
      </dl>
      <section class={`reachability card ${reachable ? "is-open" : "is-closed"}`} aria-labelledby="reach-heading" data-testid="reachability">
        <h2 id="reach-heading">{reachable === null ? t("reachableNow") : reachable ? t("reachableNow") : t("notReachableNow")}</h2>
        <ErrorNote error={reach.error} retry={reach.reload} />
        {reach.data && reach.data.routes.length > 0 && (
          <ul>
            {reach.data.routes.map((route, index) => (
              <li key={route.id ?? index}>
                {route.label ?? translateMaybe(lang, `purpose_${route.purpose}`, route.purpose)} – {translateMaybe(lang, `channel_${route.channel}`, route.channel)}: <RouteValue route={route} />
                {route.until && (
                  <span class="hint">
                    {" "}
                    ({t("until")} {formatTime(route.until)})
                  </span>
                )}
              </li>
            ))}
          </ul>
        )}
        {reach.data?.next_opening && (
          <p>
            {t("nextOpening")}: <time dateTime={reach.data.next_opening.at}>{formatDateTime(reach.data.next_opening.at)}</time> ({reach.data.next_opening.label})
          </p>
        )}
      </section>
      <div class="actions">
        <button type="button" class="button-primary" aria-expanded={panel === "conversation"} onClick={() => setPanel(panel === "conversation" ? "none" : "conversation")}>
          {t("startConversation")}
        </button>
        <button type="button" aria-expanded={panel === "meeting"} onClick={() => setPanel(panel === "meeting" ? "none" : "meeting")}>
          {t("startMeeting")}
        </button>
        {isAdmin(me) && (
          <a class="button" href={`#/admin/units/${u.id}`}>
            {t("editUnit")}
          </a>
        )}
      </div>
      {panel === "conversation" && <StartConversation unit={u} />}
      {panel === "meeting" && <StartMeeting unitIds={[u.id]} />}
      {(u.closures ?? []).length > 0 && (
        <section aria-labelledby="closures-heading">
          <h2 id="closures-heading">{t("closures")}</h2>
          <ul>
            {(u.closures ?? []).map((closure) => (
              <li key={closure.id}>
                {formatDateTime(closure.starts_at)} – {formatDateTime(closure.ends_at)}: {closure.reason}
              </li>
            ))}
          </ul>
        </section>
      )}
      <section aria-labelledby="routes-heading">
        <h2 id="routes-heading">{t("contactRoutes")}</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("routePurpose")}</th>
                <th scope="col">{t("routeChannel")}</th>
                <th scope="col">{t("routeValue")}</th>
                <th scope="col">{t("routeHours")}</th>
              </tr>
            </thead>
            <tbody>
              {[...routes]
                .sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0))
                .map((route, index) => (
                  <tr key={route.id ?? index}>
                    <td>
                      {translateMaybe(lang, `purpose_${route.purpose}`, route.purpose)}
                      {route.label && <span class="hint"> – {route.label}</span>}
                    </td>
                    <td>{translateMaybe(lang, `channel_${route.channel}`, route.channel)}</td>
                    <td><RouteValue route={route} /></td>
                    <td>{hoursText(lang, route.hours)}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      </section>
    </div>
  );
}

