// Opening hours in the admin editor (issue 14): weekly time spans, holiday rules (Swedish public holidays
// and the aftnar), dated spans, a 14-day preview from the server before saving, and closures/notices.
import { useEffect, useState } from "preact/hooks";
import { ErrorNote, Notice } from "../components";
import { formatDateTime, formatDay, translateMaybe, useLang, useT } from "../i18n";
import { addClosure, previewHours, removeClosure } from "../services";
import type { Closure, HoursDraft, HoursPreview, RouteDraft, TimeSpanIn } from "../types";

const DAYS = [1, 2, 3, 4, 5, 6, 7];
const RULES = ["normal", "closed_on_holidays", "holidays_only"] as const;

function span(from_day: number, to_day: number, holiday_rule: TimeSpanIn["holiday_rule"] = "normal"): TimeSpanIn {
  return { from_day, to_day, all_day: false, from_time: "08:00", to_time: "16:00", from_date: null, to_date: null, holiday_rule, comment: null };
}

/** Weekend and holiday discharge: Saturday–Sunday, and public holidays and eves that fall on weekdays. */
const WEEKEND_DISCHARGE = (): TimeSpanIn[] => [span(6, 7), span(1, 5, "holidays_only")];

/** The hours a route starts with in the editor: a weekend discharge route gets weekend and holiday hours. */
export function initialHours(purpose: string): HoursDraft {
  return purpose === "weekend_discharge" ? WEEKEND_DISCHARGE() : [];
}

/** A saved route's hours for the editor: none stored means "always" (only ever set explicitly). */
export function hoursOf(route: { hours?: HoursDraft }): HoursDraft {
  const hours = route.hours ?? [];
  return hours === "always" || hours.length === 0 ? "always" : hours;
}

export function newRoute(rank?: number): RouteDraft {
  return { purpose: "general", channel: "phone", label: "", value: "", audience: "staff", rank, hours: [] };
}

const clock = (value: string | null) => (value ?? "").slice(0, 5);

export function HoursEditor({
  prefix,
  unitId,
  route,
  change,
  error,
}: {
  prefix: string;
  unitId: string | null;
  route: RouteDraft;
  change: (hours: HoursDraft) => void;
  error?: string;
}) {
  const t = useT();
  const lang = useLang();
  const hours = route.hours;
  const always = hours === "always";
  const spans = always ? [] : hours;
  const setSpan = (index: number, patch: Partial<TimeSpanIn>) => change(spans.map((item, i) => (i === index ? { ...item, ...patch } : item)));
  const id = (index: number, name: string) => `${prefix}-span-${index}-${name}`;
  const day = (index: number, name: "from_day" | "to_day", label: "fromDay" | "toDay") => (
    <div class="field">
      <label for={id(index, name)}>{t(label)}</label>
      <select id={id(index, name)} value={String(spans[index][name])} onChange={(event) => setSpan(index, { [name]: Number((event.target as HTMLSelectElement).value) })}>
        {DAYS.map((value) => (
          <option key={value} value={value}>
            {translateMaybe(lang, `day_${value}`, String(value))}
          </option>
        ))}
      </select>
    </div>
  );
  const input = (index: number, name: "from_time" | "to_time" | "from_date" | "to_date", label: "fromTime" | "toTime" | "validFromDate" | "validToDate") => (
    <div class="field">
      <label for={id(index, name)}>{t(label)}</label>
      <input
        id={id(index, name)}
        type={name.endsWith("time") ? "time" : "date"}
        value={name.endsWith("time") ? clock(spans[index][name]) : (spans[index][name] ?? "")}
        onInput={(event) => setSpan(index, { [name]: (event.target as HTMLInputElement).value || null })}
      />
    </div>
  );
  return (
    <fieldset class="hours" aria-describedby={error ? `${prefix}-hours-error` : undefined}>
      <legend>{t("routeHours")}</legend>
      <label class="checkbox">
        <input type="checkbox" checked={always} onChange={(event) => change((event.target as HTMLInputElement).checked ? "always" : [span(1, 5)])} /> {t("hoursAlways")}
      </label>
      {spans.map((item, index) => (
        <fieldset class="span-row" key={index}>
          <legend>
            {t("hoursSpan")} {index + 1}
          </legend>
          {day(index, "from_day", "fromDay")}
          {day(index, "to_day", "toDay")}
          <label class="checkbox">
            <input type="checkbox" checked={item.all_day} onChange={(event) => setSpan(index, { all_day: (event.target as HTMLInputElement).checked })} /> {t("allDay")}
          </label>
          {!item.all_day && input(index, "from_time", "fromTime")}
          {!item.all_day && input(index, "to_time", "toTime")}
          <div class="field">
            <label for={id(index, "rule")}>{t("holidayRule")}</label>
            <select id={id(index, "rule")} value={item.holiday_rule} onChange={(event) => setSpan(index, { holiday_rule: (event.target as HTMLSelectElement).value as TimeSpanIn["holiday_rule"] })}>
              {RULES.map((rule) => (
                <option key={rule} value={rule}>
                  {translateMaybe(lang, `holiday_${rule}`, rule)}
                </option>
              ))}
            </select>
          </div>
          {input(index, "from_date", "validFromDate")}
          {input(index, "to_date", "validToDate")}
          <button type="button" onClick={() => change(spans.filter((_, i) => i !== index))}>
            {t("remove")}
          </button>
        </fieldset>
      ))}
      {!always && (
        <div class="actions">
          <button type="button" onClick={() => change([...spans, span(1, 5)])}>
            {t("addHours")}
          </button>
          <button type="button" onClick={() => change([...spans, span(1, 7, "holidays_only")])}>
            {t("addHolidayHours")}
          </button>
          <button type="button" onClick={() => change([...spans, ...WEEKEND_DISCHARGE()])}>
            {t("weekendPreset")}
          </button>
        </div>
      )}
      {error && (
        <p class="field-error" id={`${prefix}-hours-error`}>
          {error}
        </p>
      )}
      {unitId && <Preview unitId={unitId} route={route} />}
    </fieldset>
  );
}

/** The server's preview of the unsaved hours: open now or the next opening, and day by day for 14 days. */
function Preview({ unitId, route }: { unitId: string; route: RouteDraft }) {
  const t = useT();
  const lang = useLang();
  const [preview, setPreview] = useState<HoursPreview | null>(null);
  const [error, setError] = useState<unknown>(null);
  const key = JSON.stringify(route.hours);
  useEffect(() => setPreview(null), [key]);
  const run = () =>
    previewHours(unitId, route.id, route.hours)
      .then((value) => {
        setPreview(value);
        setError(null);
      })
      .catch(setError);
  return (
    <div class="hours-preview">
      <button type="button" onClick={() => void run()} disabled={route.hours !== "always" && route.hours.length === 0}>
        {t("previewHours")}
      </button>
      <ErrorNote error={error} />
      {preview && (
        <section data-testid="hours-preview" aria-label={t("previewTitle")}>
          <p role="status">
            <strong>{preview.open_now ? t("openNowLabel") : t("closedNowLabel")}</strong>
            {!preview.open_now && preview.next_opening && ` · ${t("nextOpening")}: ${formatDateTime(preview.next_opening, lang)}`}
          </p>
          <div class="table-wrap">
            <table>
              <caption>{t("previewTitle")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("dateLabel")}</th>
                  <th scope="col">{t("openLabel")}</th>
                </tr>
              </thead>
              <tbody>
                {preview.days.map((day) => (
                  <tr key={day.date} data-date={day.date}>
                    <th scope="row">
                      {formatDay(day.date, lang)}
                      {day.holiday && <span class="badge"> {day.holiday}</span>}
                    </th>
                    <td>
                      {day.open.length ? day.open.map((open) => `${open.start}–${open.end}`).join(", ") : t("closedAllDay")}
                      {day.closures.length > 0 && ` (${day.closures.join(", ")})`}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
    </div>
  );
}

/** Closures (not reachable) and notices (information only) of the unit or one of its routes. */
export function ClosuresEditor({ unitId, routes, closures, onChange }: { unitId: string; routes: RouteDraft[]; closures: Closure[]; onChange: () => void }) {
  const t = useT();
  const lang = useLang();
  const [form, setForm] = useState({ kind: "closure", route_id: "", starts_at: "", ends_at: "", reason: "" });
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const set = (patch: Partial<typeof form>) => {
    setForm((current) => ({ ...current, ...patch }));
    setSaved(false);
  };
  const local = (value: string) => (value ? new Date(value).toISOString() : "");
  async function submit(event: Event) {
    event.preventDefault();
    setError(null);
    try {
      await addClosure(unitId, { ...form, route_id: form.route_id || null, starts_at: local(form.starts_at), ends_at: local(form.ends_at), reason: form.reason.trim() });
      setForm({ kind: "closure", route_id: "", starts_at: "", ends_at: "", reason: "" });
      setSaved(true);
      onChange();
    } catch (err) {
      setError(err);
    }
  }
  async function remove(id: string) {
    setError(null);
    try {
      await removeClosure(id);
      onChange();
    } catch (err) {
      setError(err);
    }
  }
  const scope = (closure: Closure) => routes.find((route) => route.id === closure.route_id)?.label ?? t("wholeUnit");
  return (
    <section aria-labelledby="closures-edit-heading" class="form">
      <h2 id="closures-edit-heading">{t("closures")}</h2>
      {closures.length === 0 ? (
        <p>{t("noClosures")}</p>
      ) : (
        <ul data-testid="closures">
          {closures.map((closure) => (
            <li key={closure.id}>
              {translateMaybe(lang, `kind_${closure.kind}`, closure.kind)}, {scope(closure)}: {formatDateTime(closure.starts_at, lang)} – {formatDateTime(closure.ends_at, lang)}: {closure.reason}{" "}
              <button type="button" onClick={() => void remove(closure.id)} aria-label={`${t("remove")}: ${closure.reason}`}>
                {t("remove")}
              </button>
            </li>
          ))}
        </ul>
      )}
      <form class="route-row" onSubmit={(event) => void submit(event)} aria-label={t("addClosure")}>
        <div class="field">
          <label for="closure-kind">{t("closureKind")}</label>
          <select id="closure-kind" value={form.kind} onChange={(event) => set({ kind: (event.target as HTMLSelectElement).value })}>
            <option value="closure">{t("kind_closure")}</option>
            <option value="notice">{t("kind_notice")}</option>
          </select>
        </div>
        <div class="field">
          <label for="closure-scope">{t("closureScope")}</label>
          <select id="closure-scope" value={form.route_id} onChange={(event) => set({ route_id: (event.target as HTMLSelectElement).value })}>
            <option value="">{t("wholeUnit")}</option>
            {routes
              .filter((route) => route.id)
              .map((route) => (
                <option key={route.id} value={route.id}>
                  {route.label}
                </option>
              ))}
          </select>
        </div>
        <div class="field">
          <label for="closure-start">{t("closureStart")}</label>
          <input id="closure-start" type="datetime-local" required value={form.starts_at} onInput={(event) => set({ starts_at: (event.target as HTMLInputElement).value })} />
        </div>
        <div class="field">
          <label for="closure-end">{t("closureEnd")}</label>
          <input id="closure-end" type="datetime-local" required value={form.ends_at} onInput={(event) => set({ ends_at: (event.target as HTMLInputElement).value })} />
        </div>
        <div class="field">
          <label for="closure-reason">{t("reason")}</label>
          <input id="closure-reason" required maxLength={500} value={form.reason} onInput={(event) => set({ reason: (event.target as HTMLInputElement).value })} />
        </div>
        <button type="submit" class="button-primary">
          {t("addClosure")}
        </button>
        <ErrorNote error={error} />
        {saved && <Notice kind="success">{t("saved")}</Notice>}
      </form>
    </section>
  );
}
