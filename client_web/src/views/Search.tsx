// Search conversations by case reference (exact, the server's blind index), subject, unit and date;
// a case reference also lists the meetings booked from the case's conversations.
import { useState } from "preact/hooks";
import { query } from "../api";
import { ErrorNote, Loading, Notice, PageHeading, useAsync } from "../components";
import { fill, formatDateTime, plural, useLang, useT } from "../i18n";
import { hashParams } from "../router";
import { meetingsOfConversation, searchConversations, type SearchFilters } from "../services";
import { sessionStore } from "../session";
import { useStore } from "../store";
import type { ConversationSearch, Meeting } from "../types";

const FIELDS = ["case_ref", "q", "unit_id", "since", "until"] as const;
type Form = Record<(typeof FIELDS)[number], string>;

function fromHash(): Form {
  const params = hashParams();
  return Object.fromEntries(FIELDS.map((field) => [field, params.get(field) ?? ""])) as Form;
}

const anyFilter = (form: Form) => FIELDS.some((field) => form[field].trim() !== "");

function CaseMeetings({ result }: { result: ConversationSearch }) {
  const t = useT();
  const lang = useLang();
  const ids = result.items.map((item) => item.id);
  const meetings = useAsync(
    async (signal) => {
      const lists = await Promise.all(ids.map((id) => meetingsOfConversation(id, signal)));
      const all: Meeting[] = lists.flatMap((list) => list.items);
      return all.sort((a, b) => a.starts_at.localeCompare(b.starts_at));
    },
    [ids.join(",")],
  );
  return (
    <section aria-labelledby="case-meetings-heading" data-testid="case-meetings">
      <h2 id="case-meetings-heading">{t("caseMeetings")}</h2>
      <ErrorNote error={meetings.error} retry={meetings.reload} />
      {meetings.loading && !meetings.data && <Loading />}
      {meetings.data && meetings.data.length === 0 && <p class="hint">{t("caseNoMeetings")}</p>}
      {meetings.data && meetings.data.length > 0 && (
        <ul class="meeting-list">
          {meetings.data.map((meeting) => (
            <li key={meeting.id} class="meeting-item">
              <a class="meeting-title" href={`#/meetings/${meeting.id}`}>
                {meeting.title}
              </a>
              <time dateTime={meeting.starts_at}>{formatDateTime(meeting.starts_at, lang)}</time>
              <span class="hint">{meeting.invited_units.map((unit) => unit.unit_name).join(", ")}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function SearchView() {
  const t = useT();
  const lang = useLang();
  const session = useStore(sessionStore);
  const units = session.status === "ready" ? session.me.units : [];
  const [form, setForm] = useState<Form>(fromHash);
  const [filters, setFilters] = useState<Form | null>(() => (anyFilter(form) ? form : null));
  const result = useAsync(
    (signal) => (filters ? searchConversations(filters as SearchFilters, signal) : Promise.resolve(null)),
    [JSON.stringify(filters)],
  );
  const set = (field: keyof Form) => (event: Event) => setForm({ ...form, [field]: (event.target as HTMLInputElement).value });
  const submit = (event: Event) => {
    event.preventDefault();
    const trimmed = Object.fromEntries(FIELDS.map((field) => [field, form[field].trim()])) as Form;
    setFilters(anyFilter(trimmed) ? trimmed : null);
    history.replaceState(null, "", `#/search${query(trimmed)}`); // shareable, without a new route render
  };
  const data = result.data;
  return (
    <div class="search-page">
      <PageHeading>{t("searchTitle")}</PageHeading>
      <form class="search-form" onSubmit={submit} role="search" aria-label={t("searchTitle")}>
        <div class="field">
          <label for="search-case-ref">{t("searchCaseRef")}</label>
          <input id="search-case-ref" value={form.case_ref} onInput={set("case_ref")} autocomplete="off" maxLength={64} />
          <p class="hint">{t("searchCaseRefHint")}</p>
        </div>
        <div class="field">
          <label for="search-subject">{t("searchSubject")}</label>
          <input id="search-subject" value={form.q} onInput={set("q")} autocomplete="off" maxLength={200} />
        </div>
        <div class="field">
          <label for="search-unit">{t("searchUnit")}</label>
          <select id="search-unit" value={form.unit_id} onChange={set("unit_id")}>
            <option value="">{t("searchAllUnits")}</option>
            {units.map((unit) => (
              <option key={unit.unit_id} value={unit.unit_id}>
                {unit.unit_name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="search-since">{t("searchSince")}</label>
          <input id="search-since" type="date" value={form.since} onInput={set("since")} />
        </div>
        <div class="field">
          <label for="search-until">{t("searchUntil")}</label>
          <input id="search-until" type="date" value={form.until} onInput={set("until")} />
        </div>
        <div class="actions">
          <button type="submit" class="button-primary">
            {t("searchButton")}
          </button>
        </div>
      </form>
      <ErrorNote error={result.error} retry={result.reload} />
      {result.loading && filters && <Loading />}
      {data && (
        <section aria-labelledby="search-results-heading" data-testid="search-results">
          <h2 id="search-results-heading">{t("searchResults")}</h2>
          <p role="status">{plural(lang, data.items.length, "hit")}</p>
          {!data.complete && (
            <Notice kind="info">{filters?.q ? fill(t("searchPartial"), { n: String(data.scanned) }) : t("searchMore")}</Notice>
          )}
          {data.items.length > 0 && (
            <ul class="conversation-list">
              {data.items.map((item) => (
                <li key={item.id} class="conversation-item" data-testid="search-hit">
                  <a href={`#/conversations/${item.id}`} class="conversation-subject">
                    {item.subject}
                  </a>
                  <span class="conversation-meta">
                    {item.case_ref && <span>{item.case_ref} · </span>}
                    {item.participants
                      .map((p) => p.unit_name ?? p.user_name)
                      .filter(Boolean)
                      .join(", ")}
                    {" · "}
                    <time dateTime={item.created_at}>{formatDateTime(item.created_at, lang)}</time>
                  </span>
                </li>
              ))}
            </ul>
          )}
          {filters?.case_ref && data.items.length > 0 && <CaseMeetings result={data} />}
        </section>
      )}
    </div>
  );
}
