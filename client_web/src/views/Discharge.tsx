// Discharge cases (LUS): a unit's lists, opening a case, a case with its milestones, clocks and SIP booking;
// monthly statistics as charts and tables; deviation reports. Texts in ./discharge_texts.ts.
import { useState } from "preact/hooks";
import { describeError, get, post, query, request } from "../api";
import { ErrorNote, MUNICIPALITIES, Notice, PageHeading, useAsync, useDebounced } from "../components";
import type { components } from "../api.gen";
import { formatDateTime, useT } from "../i18n";
import { hashParams, navigate } from "../router";
import { searchUnits } from "../services";
import { sessionStore, unitStore } from "../session";
import { useStore } from "../store";
import { useDT } from "./discharge_texts";

type S = components["schemas"];
type Case = S["CaseOut"];
type Cell = S["StatisticsCell"];
type Deviation = S["DeviationOut"];

const VIEWS = ["mine", "due_today", "overdue", "waiting"] as const;
const VIEW_TEXT: Record<string, string> = { mine: "viewMine", due_today: "viewDueToday", overdue: "viewOverdue", waiting: "viewWaiting" };
const WARD_KINDS = ["planning_started", "ready_for_discharge", "discharged", "interrupted", "readmission"];
const PARTNER_KINDS = ["sip_held"];
const DISTRICTS = [
  "Bromma", "Enskede-Årsta-Vantör", "Farsta", "Hägersten-Älvsjö", "Hässelby-Vällingby", "Kungsholmen", "Norrmalm",
  "Rinkeby-Kista", "Skarpnäck", "Skärholmen", "Spånga-Tensta", "Södermalm", "Östermalm",
];
const CATEGORIES = [
  "missing_admission_notice", "ready_without_planning", "missing_information_at_discharge", "contact_route_unanswered",
  "payment_dispute", "other",
];

function localInput(date: Date): string {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

// ------------------------------------------------------------------------------------------ unit lists

export function CasesView() {
  const t = useDT();
  const unitId = useStore(unitStore);
  const view = hashParams().get("view") ?? "mine";
  const cases = useAsync(
    (signal) => (unitId ? get<S["CaseList"]>(`/api/v1/discharge/cases${query({ unit_id: unitId, view })}`, signal) : Promise.resolve({ items: [] })),
    [unitId, view],
  );
  return (
    <div class="discharge">
      <PageHeading>{t("casesTitle")}</PageHeading>
      <nav class="tabs" aria-label={t("casesTitle")}>
        {VIEWS.map((name) => (
          <a key={name} href={`#/cases?view=${name}`} aria-current={view === name ? "page" : undefined} data-testid={`view-${name}`}>
            {t(VIEW_TEXT[name])}
          </a>
        ))}
      </nav>
      <ErrorNote error={cases.error} retry={cases.reload} />
      {cases.data && cases.data.items.length === 0 && <p>{t("noCases")}</p>}
      <ul class="conversation-list" data-testid="case-list">
        {(cases.data?.items ?? []).map((item) => (
          <li key={item.id}>
            <a href={`#/cases/${item.id}`} class="conversation-link">
              <span class="conversation-subject">{item.case_ref}</span>
              <span class="conversation-meta">
                {t(`status_${item.status}`)} · {item.municipality}
                {item.district ? ` (${item.district})` : ""}
                {item.clocks
                  .filter((clock) => clock.state === "missed" && !clock.done_at)
                  .map((clock) => ` · ${t(`clock_${clock.clock}`)}: ${t("state_missed")}`)}
              </span>
            </a>
          </li>
        ))}
      </ul>
      <NewCase onOpened={(opened) => navigate(`/cases/${opened.id}`)} />
    </div>
  );
}

function UnitPicker({ label, type, value, onChange, testId }: {
  label: string; type: string; value: string; onChange: (id: string) => void; testId: string;
}) {
  const t = useDT();
  const [text, setText] = useState("");
  const q = useDebounced(text, 250);
  const found = useAsync((signal) => (q.length >= 2 ? searchUnits({ q, type, limit: 6 }, signal) : Promise.resolve(null)), [q]);
  return (
    <fieldset class="field" data-testid={testId}>
      <legend>{label}</legend>
      <input type="search" value={text} aria-label={label} placeholder={t("chooseUnit")} onInput={(event) => setText((event.target as HTMLInputElement).value)} />
      {(found.data?.items ?? []).map((unit) => (
        <label key={unit.id} class="checkbox">
          <input type="radio" name={testId} checked={value === unit.id} onChange={() => onChange(unit.id)} /> {unit.name}
        </label>
      ))}
    </fieldset>
  );
}

function NewCase({ onOpened }: { onOpened: (opened: Case) => void }) {
  const t = useDT();
  const unitId = useStore(unitStore);
  const [form, setForm] = useState({ case_ref: "", municipality_code: "0180", district: "", age_band: "65_plus", admitted_at: localInput(new Date()), personal_number: "" });
  const [units, setUnits] = useState({ home_care: "", primary_care: "", municipal_health_care: "" });
  const [error, setError] = useState<unknown>(null);
  if (!unitId) return null;
  const set = (name: string) => (event: Event) => setForm({ ...form, [name]: (event.target as HTMLInputElement).value });
  async function submit(event: Event) {
    event.preventDefault();
    setError(null);
    try {
      const opened = await post<Case>("/api/v1/discharge/cases", {
        case_ref: form.case_ref,
        municipality_code: form.municipality_code,
        district: form.municipality_code === "0180" && form.district ? form.district : null,
        age_band: form.age_band,
        ward_unit_id: unitId,
        admitted_at: new Date(form.admitted_at).toISOString(),
        personal_number: form.personal_number || null,
        units: Object.entries(units).filter(([, id]) => id).map(([role, id]) => ({ unit_id: id, role })),
      });
      onOpened(opened);
    } catch (err) {
      setError(err);
    }
  }
  return (
    <details class="card" data-testid="new-case-details">
      <summary>{t("newCase")}</summary>
      <form class="form" onSubmit={submit} data-testid="new-case">
        <label class="field">{t("caseRef")}<input required value={form.case_ref} onInput={set("case_ref")} name="case_ref" /></label>
        <label class="field">{t("municipality")}
          <select value={form.municipality_code} onChange={set("municipality_code")} name="municipality_code">
            {MUNICIPALITIES.map(([code, name]) => <option key={code} value={code}>{name}</option>)}
          </select>
        </label>
        {form.municipality_code === "0180" && (
          <label class="field">{t("district")}
            <select value={form.district} onChange={set("district")} name="district">
              <option value="">–</option>
              {DISTRICTS.map((name) => <option key={name} value={name}>{name}</option>)}
            </select>
          </label>
        )}
        <label class="field">{t("ageBand")}
          <select value={form.age_band} onChange={set("age_band")} name="age_band">
            <option value="65_plus">{t("over65")}</option>
            <option value="under_65">{t("under65")}</option>
          </select>
        </label>
        <label class="field">{t("admittedAt")}<input type="datetime-local" required value={form.admitted_at} onInput={set("admitted_at")} /></label>
        <UnitPicker label={t("homeCareUnit")} type="home_care" value={units.home_care} testId="pick-home-care" onChange={(id) => setUnits({ ...units, home_care: id })} />
        <UnitPicker label={t("primaryCareUnit")} type="primary_care" value={units.primary_care} testId="pick-primary-care" onChange={(id) => setUnits({ ...units, primary_care: id })} />
        <UnitPicker label={t("municipalHealthUnit")} type="municipal_health_care" value={units.municipal_health_care} testId="pick-municipal" onChange={(id) => setUnits({ ...units, municipal_health_care: id })} />
        <label class="field">{t("personalNumber")}<input autoComplete="off" value={form.personal_number} onInput={set("personal_number")} /></label>
        <ErrorNote error={error} />
        <button type="submit" class="button-primary">{t("openCase")}</button>
      </form>
    </details>
  );
}

// ------------------------------------------------------------------------------------------ one case

export function CaseView({ id }: { id: string }) {
  const t = useDT();
  const common = useT();
  const loaded = useAsync((signal) => get<Case>(`/api/v1/discharge/cases/${id}`, signal), [id]);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState("");
  const [sipAt, setSipAt] = useState(localInput(new Date(Date.now() + 86_400_000)));
  const session = useStore(sessionStore);
  const mine = new Set(session.status === "ready" ? session.me.units.map((unit) => unit.unit_id) : []);
  const item = loaded.data;
  async function act(work: () => Promise<unknown>, done = "") {
    setError(null);
    try {
      await work();
      setNote(done);
      loaded.reload();
    } catch (err) {
      setError(err);
    }
  }
  if (!item) return <ErrorNote error={loaded.error} retry={loaded.reload} />;
  const isWard = mine.has(item.ward_unit_id);
  const kinds = [...(isWard ? WARD_KINDS : []), ...PARTNER_KINDS];
  const names = Object.fromEntries(item.units.map((unit) => [unit.unit_id, unit.unit_name]));
  return (
    <div class="discharge-case">
      <PageHeading>{item.case_ref}</PageHeading>
      <p>
        <a href={`#/search${query({ case_ref: item.case_ref })}`}>{common("caseEverything")}</a>
      </p>
      <p data-testid="case-status">
        <strong>{t(`status_${item.status}`)}</strong> · {item.municipality}
        {item.district ? ` (${item.district})` : ""} · {item.age_band === "65_plus" ? t("over65") : t("under65")}
      </p>
      {item.conversation_id && <p><a href={`#/conversations/${item.conversation_id}`}>{t("openThread")}</a></p>}
      {note && <Notice kind="success">{note}</Notice>}
      <ErrorNote error={error} />
      <section class="card" aria-labelledby="clocks">
        <h2 id="clocks">{t("clocks")}</h2>
        <ul data-testid="clocks">
          {item.clocks.map((clock) => (
            <li key={clock.clock} data-clock={clock.clock} data-state={clock.state}>
              {t(`clock_${clock.clock}`)}: <strong>{t(`state_${clock.state}`)}</strong> ({t("due")} {formatDateTime(clock.due_at)})
            </li>
          ))}
        </ul>
        {item.escalations.length > 0 && (
          <>
            <h3>{t("escalations")}</h3>
            <ul data-testid="escalations">
              {item.escalations.map((step) => (
                <li key={`${step.clock}-${step.level}`}>
                  {formatDateTime(step.at)} · {t(`clock_${step.clock}`)} · {step.level}: {step.route_label ?? "–"} {step.route_value ?? ""}
                </li>
              ))}
            </ul>
          </>
        )}
      </section>
      <section class="card" aria-labelledby="milestones">
        <h2 id="milestones">{t("milestones")}</h2>
        <ol data-testid="milestones">
          {item.milestones.map((milestone) => (
            <li key={milestone.id} data-kind={milestone.kind}>
              <strong>{t(`kind_${milestone.kind}`)}</strong> {formatDateTime(milestone.effective_at)}
              <ul>
                {milestone.acks.map((ack) => (
                  <li key={ack.unit_id}>
                    {names[ack.unit_id] ?? ""}: {ack.acknowledged_at ? `${t("acknowledged")} ${formatDateTime(ack.acknowledged_at)}` : t("notAcknowledged")}
                    {!ack.acknowledged_at && mine.has(ack.unit_id) && milestone.message_id && (
                      <button type="button" data-testid={`ack-${milestone.kind}`} onClick={() => act(() => post(`/api/v1/conversations/${item.conversation_id}/messages/${milestone.message_id}/acknowledge`))}>
                        {t("acknowledge")}
                      </button>
                    )}
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ol>
        {item.status !== "discharged" && (
          <div class="toolbar">
            {kinds.map((kind) => (
              <button key={kind} type="button" data-testid={`send-${kind}`} onClick={() => act(() => post(`/api/v1/discharge/cases/${item.id}/milestones`, { kind }))}>
                {t("sendMilestone")}: {t(`kind_${kind}`)}
              </button>
            ))}
          </div>
        )}
      </section>
      {item.status !== "discharged" && (
        <section class="card" aria-labelledby="sip">
          <h2 id="sip">{t("bookSip")}</h2>
          <form class="form" data-testid="book-sip" onSubmit={(event) => {
            event.preventDefault();
            void act(() => post(`/api/v1/discharge/cases/${item.id}/sip-meeting`, { starts_at: new Date(sipAt).toISOString() }), t("sipBooked"));
          }}>
            <input type="datetime-local" value={sipAt} aria-label={t("bookSip")} onInput={(event) => setSipAt((event.target as HTMLInputElement).value)} />
            <button type="submit" class="button-primary">{t("bookSip")}</button>
          </form>
        </section>
      )}
      <section class="card" aria-labelledby="case-units">
        <h2 id="case-units">{t("units")}</h2>
        <ul>{item.units.map((unit) => <li key={unit.unit_id}>{unit.unit_name} ({unit.organisation_name})</li>)}</ul>
      </section>
    </div>
  );
}

// ------------------------------------------------------------------------------------------ statistics

function BarChart({ title, points, testId }: { title: string; points: [string, number][]; testId: string }) {
  const max = Math.max(1, ...points.map(([, value]) => value));
  const width = 36;
  return (
    <figure class="card" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <svg role="img" aria-label={title} viewBox={`0 0 ${points.length * width + 10} 170`} width="100%" height="180">
        {points.map(([month, value], index) => {
          const height = Math.round((value / max) * 130);
          return (
            <g key={month}>
              <rect x={index * width + 8} y={140 - height} width={width - 10} height={height} fill="#1d5d90">
                <title>{`${month}: ${value}`}</title>
              </rect>
              <text x={index * width + 8} y={158} font-size="9">{month.slice(2)}</text>
              <text x={index * width + 8} y={136 - height} font-size="9">{value}</text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

export function StatisticsView() {
  const t = useDT();
  const year = new Date().getFullYear();
  const [period, setPeriod] = useState({ first: `${year - 1}-01`, last: `${year}-12` });
  const [shown, setShown] = useState(period);
  const params = query({ first_month: shown.first, last_month: shown.last });
  const stats = useAsync((signal) => get<S["StatisticsOut"]>(`/api/v1/discharge/statistics${params}`, signal), [params]);
  const cells: Cell[] = stats.data?.items ?? [];
  const totals = new Map<string, [number, number]>();
  for (const cell of cells) {
    if (cell.district !== null) continue;
    const [ready, payment] = totals.get(cell.month) ?? [0, 0];
    totals.set(cell.month, [ready + (cell.ready_days ?? 0), payment + (cell.payment_days ?? 0)]);
  }
  const months = [...totals.keys()].sort();
  return (
    <div class="statistics">
      <PageHeading>{t("statisticsTitle")}</PageHeading>
      <p class="hint">{t("statisticsIntro")}</p>
      <form class="toolbar" onSubmit={(event) => { event.preventDefault(); setShown(period); }}>
        <label class="field field-inline">{t("firstMonth")}<input type="month" value={period.first} onInput={(event) => setPeriod({ ...period, first: (event.target as HTMLInputElement).value })} /></label>
        <label class="field field-inline">{t("lastMonth")}<input type="month" value={period.last} onInput={(event) => setPeriod({ ...period, last: (event.target as HTMLInputElement).value })} /></label>
        <button type="submit">{t("show")}</button>
        <a class="button" href={`/api/v1/discharge/statistics.csv${params}`} download>{t("downloadCsv")}</a>
        <a class="button" href={`/api/v1/discharge/statistics${params}`} download="utskrivning.json">{t("downloadJson")}</a>
      </form>
      <ErrorNote error={stats.error} retry={stats.reload} />
      <BarChart title={t("chartReadyDays")} testId="chart-ready" points={months.map((month) => [month, totals.get(month)?.[0] ?? 0])} />
      <BarChart title={t("chartPaymentDays")} testId="chart-payment" points={months.map((month) => [month, totals.get(month)?.[1] ?? 0])} />
      <div class="table-wrap">
        <table data-testid="statistics-table">
          <thead>
            <tr>
              <th>{t("month")}</th><th>{t("municipality")}</th><th>{t("district")}</th><th>{t("cases")}</th><th>{t("readyDays")}</th>
              <th>{t("paymentDays")}</th><th>{t("discharges65")}</th><th>{t("readmissions65")}</th><th>{t("share")}</th>
            </tr>
          </thead>
          <tbody>
            {cells.map((cell) => {
              const shownValue = (value: number | null) => (value === null ? t("suppressed") : String(value));
              return (
                <tr key={`${cell.month}-${cell.municipality_code}-${cell.district ?? ""}`}>
                  <td>{cell.month}</td><td>{cell.municipality}</td><td>{cell.district ?? t("wholeMunicipality")}</td>
                  <td>{shownValue(cell.cases)}</td><td>{shownValue(cell.ready_days)}</td><td>{shownValue(cell.payment_days)}</td>
                  <td>{shownValue(cell.discharges_65_plus)}</td><td>{shownValue(cell.readmissions_65_plus)}</td>
                  <td>{cell.readmission_share === null ? "–" : `${(cell.readmission_share * 100).toFixed(1)} %`}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}

// ------------------------------------------------------------------------------------------ deviations

export function DeviationsView() {
  const t = useDT();
  const session = useStore(sessionStore);
  const followUp = session.status === "ready" && session.me.system_roles.includes("followup");
  const reports = useAsync((signal) => get<S["DeviationList"]>("/api/v1/deviations", signal), []);
  const year = new Date().getFullYear();
  const statParams = query({ first_month: `${year}-01`, last_month: `${year}-12` });
  const stats = useAsync(
    (signal) => (followUp ? get<S["DeviationStatistics"]>(`/api/v1/deviations/statistics${statParams}`, signal) : Promise.resolve(null)),
    [followUp],
  );
  const [form, setForm] = useState({ category: "missing_admission_notice", occurred_on: new Date().toISOString().slice(0, 10), text: "", reporter_phone: "", reporter_email: "" });
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState("");
  const set = (name: string) => (event: Event) => setForm({ ...form, [name]: (event.target as HTMLInputElement).value });
  async function submit(event: Event) {
    event.preventDefault();
    setError(null);
    setNote("");
    try {
      await post("/api/v1/deviations", { ...form, reporter_phone: form.reporter_phone || null, reporter_email: form.reporter_email || null });
      setNote(t("reported"));
      setForm({ ...form, text: "" });
      reports.reload();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <div class="deviations">
      <PageHeading>{t("deviationsTitle")}</PageHeading>
      <p class="hint">{t("deviationsIntro")}</p>
      <form class="form card" onSubmit={submit} data-testid="deviation-form">
        <label class="field">{t("category")}
          <select value={form.category} onChange={set("category")}>
            {CATEGORIES.map((name) => <option key={name} value={name}>{t(`cat_${name}`)}</option>)}
          </select>
        </label>
        <label class="field">{t("occurredOn")}<input type="date" required value={form.occurred_on} onInput={set("occurred_on")} /></label>
        <label class="field">{t("text")}<textarea required minLength={10} rows={5} value={form.text} onInput={set("text")} /></label>
        <label class="field">{t("yourPhone")}<input type="tel" value={form.reporter_phone} onInput={set("reporter_phone")} /></label>
        <label class="field">{t("yourEmail")}<input type="email" value={form.reporter_email} onInput={set("reporter_email")} /></label>
        {error ? <p class="notice notice-error" role="alert" data-testid="deviation-error">{describeError(error)}</p> : null}
        {note && <Notice kind="success">{note}</Notice>}
        <button type="submit" class="button-primary">{t("report")}</button>
      </form>
      <h2>{t("reports")}</h2>
      <ErrorNote error={reports.error} retry={reports.reload} />
      <ul class="conversation-list" data-testid="deviation-list">
        {(reports.data?.items ?? []).map((item) => <DeviationItem key={item.id} item={item} followUp={followUp} onSaved={reports.reload} />)}
      </ul>
      {followUp && stats.data && (
        <section class="card">
          <h2>{t("perCategory")}</h2>
          <a class="button" href={`/api/v1/deviations/statistics.csv${statParams}`} download>{t("downloadCsv")}</a>
          <table>
            <thead><tr><th>{t("month")}</th><th>{t("category")}</th><th>{t("reports")}</th></tr></thead>
            <tbody>
              {stats.data.items.map((row) => (
                <tr key={`${row.month}-${row.category}`}><td>{row.month}</td><td>{t(`cat_${row.category}`)}</td><td>{row.reports}</td></tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}

function DeviationItem({ item, followUp, onSaved }: { item: Deviation; followUp: boolean; onSaved: () => void }) {
  const t = useDT();
  const [status, setStatus] = useState(item.status);
  const [answer, setAnswer] = useState(item.answer ?? "");
  const [error, setError] = useState<unknown>(null);
  async function save(event: Event) {
    event.preventDefault();
    try {
      await request(`/api/v1/deviations/${item.id}`, { method: "PATCH", body: { status, answer: answer || null } });
      onSaved();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <li class="card">
      <strong>{t(`cat_${item.category}`)}</strong> · {item.occurred_on} · {t(`dev_${item.status}`)} · {item.reporter_name}
      <p>{item.text}</p>
      {item.answer && <p><em>{t("answer")}:</em> {item.answer}</p>}
      {followUp && (
        <form class="toolbar" onSubmit={save}>
          <select value={status} aria-label="Status" onChange={(event) => setStatus((event.target as HTMLSelectElement).value)}>
            {["inskickad", "mottagen", "under_utredning", "atgardad"].map((name) => <option key={name} value={name}>{t(`dev_${name}`)}</option>)}
          </select>
          <input value={answer} aria-label={t("answer")} onInput={(event) => setAnswer((event.target as HTMLInputElement).value)} />
          <button type="submit">{t("save")}</button>
          <ErrorNote error={error} />
        </form>
      )}
    </li>
  );
}
