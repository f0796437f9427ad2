import { useEffect, useState } from "preact/hooks";
import { ErrorNote, Loading, MUNICIPALITIES, municipalityName, Notice, PageHeading, UNIT_TYPES, useAsync, useDebounced } from "../components";
import { formatDateTime, formatTime, translateMaybe, useLang, useT } from "../i18n";
import { hashParams, navigate } from "../router";
import { createConversation, createMeeting, getReachability, getUnit, meetingHref, searchUnits } from "../services";
import { isAdmin, sessionStore, unitStore } from "../session";
import { useStore } from "../store";
import type { ContactRoute, Meeting, TimeSpan, Unit, UnitSummary } from "../types";

export function unitTypeLabel(lang: "sv" | "en", type: string): string {
  return translateMaybe(lang, `type_${type}`, type);
}

function orgName(unit: UnitSummary): string {
  return unit.organisation_name ?? unit.organisation?.name ?? "";
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
      <ErrorNote error={results.error} />
      <p class="result-count" role="status" aria-live="polite">
        {results.loading ? t("loading") : `${results.data?.total ?? items.length} ${t("results")}`}
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

function routeValue(route: ContactRoute) {
  if (route.channel === "phone") return <a href={`tel:${route.value.replace(/[^\d+]/g, "")}`}>{route.value}</a>;
  if (route.channel === "email") return <a href={`mailto:${route.value}`}>{route.value}</a>;
  return <span>{route.value}</span>;
}

function addressText(address: Unit["address"]): string {
  if (!address) return "";
  return [address.street, [address.postal_code, address.town].filter(Boolean).join(" ")].filter(Boolean).join(", ");
}

function StartConversation({ unit }: { unit: Unit }) {
  const t = useT();
  const session = useStore(sessionStore);
  const selected = useStore(unitStore);
  const [subject, setSubject] = useState("");
  const [caseRef, setCaseRef] = useState("");
  const [fromUnit, setFromUnit] = useState(selected ?? "");
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
        createConversation({ subject, case_ref: caseRef, from_unit_id: fromUnit || units[0].unit_id, unit_ids: [unit.id] })
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
      <ErrorNote error={error} />
      <button type="submit" class="button-primary" disabled={busy || !subject.trim()}>
        {t("startConversation")}
      </button>
    </form>
  );
}

/** Book a video meeting with units (from a unit page or a conversation); the video part hosts it. */
export function StartMeeting({ unitIds, conversationId = null }: { unitIds: string[]; conversationId?: string | null }) {
  const t = useT();
  const selected = useStore(unitStore);
  const [title, setTitle] = useState("");
  const [startsAt, setStartsAt] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<Meeting | null>(null);
  const [duration, setDuration] = useState(60);
  return (
    <form
      class="card form"
      aria-labelledby="start-meeting-heading"
      onSubmit={(event) => {
        event.preventDefault();
        setError(null);
        // datetime-local has no zone; the user means Stockholm time, which is the browser's here.
        createMeeting({ title, starts_at: new Date(startsAt).toISOString(), duration_minutes: duration, organiser_unit_id: selected, unit_ids: unitIds.filter((id) => id !== selected), conversation_id: conversationId })
          .then((meeting) => setDone(meeting))
          .catch((err: unknown) => setError(err));
      }}
    >
      <h2 id="start-meeting-heading">{t("startMeeting")}</h2>
      <div class="field">
        <label for="meeting-title">{t("meetingTitle")}</label>
        <input id="meeting-title" required maxLength={200} value={title} onInput={(event) => setTitle((event.target as HTMLInputElement).value)} />
      </div>
      <div class="field">
        <label for="meeting-start">{t("startsAt")}</label>
        <input id="meeting-start" type="datetime-local" required value={startsAt} onInput={(event) => setStartsAt((event.target as HTMLInputElement).value)} />
      </div>
      <div class="field">
        <label for="meeting-duration">{t("durationMinutes")}</label>
        <input id="meeting-duration" type="number" min={5} max={720} step={5} value={duration} onInput={(event) => setDuration(Number((event.target as HTMLInputElement).value))} />
      </div>
      <ErrorNote error={error} />
      {done && (
        <Notice kind="success">
          {t("meetingCreated")} <a href={meetingHref(done)}>{t("joinMeeting")}</a> · <a href="#/meetings">{t("navMeetings")}</a>
        </Notice>
      )}
      <button type="submit" class="button-primary" disabled={!title.trim() || !startsAt}>
        {t("startMeeting")}
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

  if (unit.error) return <ErrorNote error={unit.error} />;
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
        <ErrorNote error={reach.error} />
        {reach.data && reach.data.routes.length > 0 && (
          <ul>
            {reach.data.routes.map((route, index) => (
              <li key={route.id ?? index}>
                {route.label ?? translateMaybe(lang, `purpose_${route.purpose}`, route.purpose)} – {translateMaybe(lang, `channel_${route.channel}`, route.channel)}: {routeValue(route)}
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
                    <td>{routeValue(route)}</td>
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

