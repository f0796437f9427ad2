import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, type FieldError } from "../api";
import { ErrorNote, Loading, MUNICIPALITIES, Notice, PageHeading, ProgressBar, UNIT_TYPES, useAsync, useDebounced } from "../components";
import { translateMaybe, useLang, useT, type TextKey } from "../i18n";
import { navigate } from "../router";
import { deleteRoute, getRoute, getUnit, hoursBody, importDirectory, listOrganisations, saveRoute, saveUnit, searchUnits } from "../services";
import type { Closure, ContactRoute, ImportReport, RouteDraft, Unit } from "../types";
import { ClosuresEditor, HoursEditor, hoursOf, initialHours, newRoute } from "./Hours";
import { unitTypeLabel } from "./Directory";

function AdminTabs({ current }: { current: "units" | "import" }) {
  const t = useT();
  return (
    <nav aria-label={t("adminTitle")} class="tabs">
      <a href="#/admin" aria-current={current === "units" ? "page" : undefined}>
        {t("adminUnits")}
      </a>
      <a href="#/admin/import" aria-current={current === "import" ? "page" : undefined}>
        {t("adminImport")}
      </a>
    </nav>
  );
}

export function AdminHome() {
  const t = useT();
  const lang = useLang();
  const [q, setQ] = useState("");
  const debounced = useDebounced(q, 200);
  const units = useAsync((signal) => searchUnits({ q: debounced, limit: 50 }, signal), [debounced]);
  return (
    <div class="admin">
      <PageHeading>{t("adminTitle")}</PageHeading>
      <AdminTabs current="units" />
      <div class="toolbar">
        <div class="field field-grow">
          <label for="admin-search">{t("search")}</label>
          <input id="admin-search" type="search" value={q} onInput={(event) => setQ((event.target as HTMLInputElement).value)} />
        </div>
        <a class="button button-primary" href="#/admin/units/new">
          {t("newUnit")}
        </a>
      </div>
      <ErrorNote error={units.error} retry={units.reload} />
      {units.loading && !units.data && <Loading />}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{t("name")}</th>
              <th scope="col">{t("unitType")}</th>
              <th scope="col">{t("hsaId")}</th>
              <th scope="col">
                <span class="visually-hidden">{t("edit")}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(units.data?.items ?? []).map((unit) => (
              <tr key={unit.id}>
                <td>{unit.name}</td>
                <td>{unitTypeLabel(lang, unit.unit_type)}</td>
                <td>{unit.hsa_id ?? ""}</td>
                <td>
                  <a href={`#/admin/units/${unit.id}`} aria-label={`${t("edit")}: ${unit.name}`}>
                    {t("edit")}
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

interface UnitForm {
  name: string;
  unit_type: string;
  organisation_id: string;
  hsa_id: string;
  municipality_code: string;
  active: boolean;
  routes: RouteDraft[];
}

const EMPTY: UnitForm = { name: "", unit_type: "ward", organisation_id: "", hsa_id: "", municipality_code: "", active: true, routes: [] };
const PURPOSES = ["general", "discharge_planning", "weekend_discharge", "on_call", "switchboard", "medication", "other"];
const CHANNELS = ["phone", "secure_message", "video", "email", "fax", "sip_text"];
const HSA_RE = /^SE\d{10}-[A-Za-z0-9]+$/;

function toForm(unit: Unit): UnitForm {
  return {
    name: unit.name ?? "",
    unit_type: unit.unit_type ?? "ward",
    organisation_id: unit.organisation?.id ?? "",
    hsa_id: unit.hsa_id ?? "",
    municipality_code: unit.municipality_code ?? "",
    active: unit.active ?? true,
    routes: (unit.routes ?? []).map(draftOf),
  };
}

/** A saved route as the editor holds it. */
function draftOf(route: ContactRoute): RouteDraft {
  return { ...route, hours: hoursOf(route) };
}

const noHours = (route: RouteDraft) => route.hours !== "always" && route.hours.length === 0;

type Errors = Partial<Record<string, TextKey | string>>;

export function validateUnit(form: UnitForm): Errors {
  const errors: Errors = {};
  if (!form.name.trim()) errors.name = "required";
  if (!form.organisation_id.trim()) errors.organisation_id = "required";
  if (form.hsa_id && (!HSA_RE.test(form.hsa_id) || form.hsa_id.length > 31)) errors.hsa_id = "invalidHsa";
  if (form.municipality_code && !/^\d{4}$/.test(form.municipality_code)) errors.municipality_code = "invalidMunicipality";
  form.routes.forEach((route, index) => {
    if (!route.value.trim()) errors[`routes.${index}.value`] = "required";
    if (!(route.label ?? "").trim()) errors[`routes.${index}.label`] = "required";
    if (noHours(route)) errors[`routes.${index}.hours`] = "hoursMissing";
  });
  return errors;
}

function serverErrors(errors: FieldError[]): Errors {
  const result: Errors = {};
  for (const error of errors) {
    const path = (error.loc ?? []).filter((part) => part !== "body").join(".") || error.field || "";
    if (path) result[path] = error.msg ?? error.message ?? "";
  }
  return result;
}

export function AdminUnitEditor({ id }: { id: string | null }) {
  const t = useT();
  const lang = useLang();
  const [form, setForm] = useState<UnitForm>(EMPTY);
  const [etag, setEtag] = useState<string | null>(null);
  const [loadedName, setLoadedName] = useState("");
  const [loading, setLoading] = useState(!!id);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [conflict, setConflict] = useState<UnitForm | null>(null);
  const [closures, setClosures] = useState<Closure[]>([]);
  const [generation, setGeneration] = useState(0);
  const summary = useRef<HTMLDivElement>(null);
  const organisations = useAsync((signal) => (id ? Promise.resolve({ items: [], next_cursor: null }) : listOrganisations(signal)), [id]);

  useEffect(() => {
    if (!id) return;
    getUnit(id)
      .then(({ unit, etag: tag }) => {
        setForm(toForm(unit));
        setClosures(unit.closures ?? []);
        setLoadedName(unit.name);
        setEtag(tag);
      })
      .catch(setLoadError)
      .finally(() => setLoading(false));
  }, [id]);

  /** After a closure change: the closures, and the new versions of the unit and its routes it made. */
  async function reloadClosures(unitId: string) {
    const latest = await getUnit(unitId);
    setClosures(latest.unit.closures ?? []);
    setEtag(latest.etag);
    setForm((current) => ({ ...current, routes: (latest.unit.routes ?? []).map(draftOf) }));
    setGeneration((value) => value + 1);
  }

  const set = (patch: Partial<UnitForm>) => {
    setForm((current) => ({ ...current, ...patch }));
    setSaved(false);
  };
  const setRoute = (index: number, patch: Partial<RouteDraft>) =>
    set({ routes: form.routes.map((route, i) => (i === index ? { ...route, ...patch } : route)) });

  const message = (key: string) => {
    const value = errors[key];
    if (!value) return null;
    return (
      <p class="field-error" id={`err-${key.replace(/\./g, "-")}`}>
        {translateMaybe(lang, value, value)}
      </p>
    );
  };
  const described = (key: string) => (errors[key] ? { "aria-invalid": true, "aria-describedby": `err-${key.replace(/\./g, "-")}` } : {});

  async function submit(event: Event) {
    event.preventDefault();
    setSaved(false);
    setSaveError(null);
    const found = validateUnit(form);
    setErrors(found);
    if (Object.keys(found).length) {
      window.setTimeout(() => summary.current?.focus(), 0);
      return;
    }
    const body: Record<string, unknown> = {
      name: form.name.trim(),
      unit_type: form.unit_type,
      hsa_id: form.hsa_id.trim() || null,
      municipality_code: form.municipality_code.trim() || null,
      active: form.active,
    };
    if (!id) {
      // Contact routes are created with a new unit; an existing unit's routes have their own API.
      body.organisation_id = form.organisation_id.trim();
      body.routes = form.routes.map((route, index) => ({
        purpose: route.purpose,
        channel: route.channel,
        label: (route.label ?? "").trim(),
        value: route.value.trim(),
        audience: route.audience ?? "staff",
        rank: route.rank ?? (index + 1) * 10,
        hours: hoursBody(route.hours),
      }));
    }
    try {
      const result = await saveUnit(id, body, etag);
      setEtag(result.etag);
      setConflict(null);
      setSaved(true);
      if (!id) navigate(`/admin/units/${result.unit.id}`);
      else setForm(toForm(result.unit));
    } catch (error) {
      if (error instanceof ApiError && error.status === 412 && id) {
        // Keep the user's edits; show what changed on the server and take its ETag for the next save.
        const latest = await getUnit(id);
        setConflict(toForm(latest.unit));
        setEtag(latest.etag);
      } else if (error instanceof ApiError && error.status === 422) {
        setErrors(serverErrors(error.errors));
        setSaveError(error);
      } else setSaveError(error);
    }
  }

  if (loading) return <Loading />;
  if (loadError) return <ErrorNote error={loadError} />;
  const errorKeys = Object.keys(errors);
  const fieldLabel = (key: string): string => {
    const labels: Record<string, TextKey> = { name: "name", unit_type: "unitType", hsa_id: "hsaId", municipality_code: "municipalityCode", active: "active", organisation_id: "organisation" };
    const route = /^routes\.(\d+)\.(\w+)$/.exec(key);
    const fields: Record<string, TextKey> = { label: "routeLabel", value: "routeValue", hours: "routeHours" };
    if (route) return `${t("contactRoutes")} ${Number(route[1]) + 1}: ${fields[route[2]] ? t(fields[route[2]]) : route[2]}`;
    return labels[key] ? t(labels[key]) : key;
  };
  const changedFields = conflict
    ? (["name", "unit_type", "hsa_id", "municipality_code", "active"] as const).filter((key) => String(conflict[key]) !== String(form[key]))
    : [];
  return (
    <div class="admin">
      <p class="breadcrumb">
        <a href="#/admin">{t("adminTitle")}</a>
      </p>
      <PageHeading>{id ? `${t("editUnit")}: ${loadedName}` : t("newUnit")}</PageHeading>
      {errorKeys.length > 0 && (
        <div class="notice notice-error" role="alert" tabIndex={-1} ref={summary}>
          <p>{t("formErrors")}</p>
          <ul>
            {errorKeys.map((key) => (
              <li key={key}>
                {fieldLabel(key)}: {translateMaybe(lang, errors[key] ?? "", errors[key] ?? "")}
              </li>
            ))}
          </ul>
        </div>
      )}
      {conflict && (
        <div class="notice notice-warning" role="alert" data-testid="conflict">
          <p>{t("conflict")}</p>
          {changedFields.length > 0 && (
            <ul>
              {changedFields.map((key) => (
                <li key={key}>
                  {fieldLabel(key)}: <s>{String(form[key])}</s> → <strong>{String(conflict[key])}</strong>
                </li>
              ))}
            </ul>
          )}
          <button
            type="button"
            onClick={() => {
              setForm(conflict);
              setConflict(null);
            }}
          >
            {t("reloadLatest")}
          </button>
        </div>
      )}
      <form class="form" noValidate aria-label={t("unitDetails")} onSubmit={(event) => void submit(event)}>
        <div class="field">
          <label for="unit-name">{t("name")}</label>
          <input id="unit-name" required value={form.name} onInput={(event) => set({ name: (event.target as HTMLInputElement).value })} {...described("name")} />
          {message("name")}
        </div>
        <div class="field">
          <label for="unit-type">{t("unitType")}</label>
          <select id="unit-type" value={form.unit_type} onChange={(event) => set({ unit_type: (event.target as HTMLSelectElement).value })}>
            {UNIT_TYPES.map((value) => (
              <option key={value} value={value}>
                {unitTypeLabel(lang, value)}
              </option>
            ))}
          </select>
        </div>
        {!id && (
          <div class="field">
            <label for="unit-org">{t("organisation")}</label>
            <select id="unit-org" required value={form.organisation_id} onChange={(event) => set({ organisation_id: (event.target as HTMLSelectElement).value })} {...described("organisation_id")}>
              <option value="">–</option>
              {(organisations.data?.items ?? []).map((org) => (
                <option key={org.id} value={org.id}>
                  {org.name}
                </option>
              ))}
            </select>
            {message("organisation_id")}
            <ErrorNote error={organisations.error} retry={organisations.reload} />
          </div>
        )}
        <div class="field">
          <label for="unit-hsa">{t("hsaId")}</label>
          <input id="unit-hsa" value={form.hsa_id} maxLength={31} onInput={(event) => set({ hsa_id: (event.target as HTMLInputElement).value })} {...described("hsa_id")} />
          {message("hsa_id")}
        </div>
        <div class="field">
          <label for="unit-municipality">{t("municipalityCode")}</label>
          <select id="unit-municipality" value={form.municipality_code} onChange={(event) => set({ municipality_code: (event.target as HTMLSelectElement).value })} {...described("municipality_code")}>
            <option value="">–</option>
            {MUNICIPALITIES.map(([code, name]) => (
              <option key={code} value={code}>
                {code} {name}
              </option>
            ))}
          </select>
          {message("municipality_code")}
        </div>
        <label class="checkbox">
          <input type="checkbox" checked={form.active} onChange={(event) => set({ active: (event.target as HTMLInputElement).checked })} /> {t("active")}
        </label>
        {id ? null : (
          <fieldset class="routes">
            <legend>{t("contactRoutes")}</legend>
            {form.routes.map((route, index) => (
              <div class="route-row" key={index}>
                <RouteFields
                  prefix={`route-${index}`}
                  unitId={null}
                  route={route}
                  change={(patch) => setRoute(index, patch)}
                  errorOf={(field) => {
                    const error = errors[`routes.${index}.${field}`];
                    return error ? translateMaybe(lang, error, error) : undefined;
                  }}
                />
                <button type="button" onClick={() => set({ routes: form.routes.filter((_, i) => i !== index) })}>
                  {t("remove")}
                </button>
              </div>
            ))}
            <button type="button" onClick={() => set({ routes: [...form.routes, newRoute()] })}>
              {t("addRoute")}
            </button>
          </fieldset>
        )}
        <ErrorNote error={saveError} />
        {saved && <Notice kind="success">{t("saved")}</Notice>}
        <div class="actions">
          <button type="submit" class="button-primary">
            {t("save")}
          </button>
        </div>
      </form>
      {id && <RoutesEditor unitId={id} routes={form.routes} generation={generation} onChange={(routes) => setForm((current) => ({ ...current, routes }))} />}
      {id && <ClosuresEditor unitId={id} routes={form.routes} closures={closures} onChange={() => void reloadClosures(id)} />}
    </div>
  );
}

/** Purpose, channel, label, value and opening hours of one contact route (new-unit form and per-route editor). */
function RouteFields({
  prefix,
  unitId,
  route,
  change,
  errorOf,
}: {
  prefix: string;
  unitId: string | null;
  route: RouteDraft;
  change: (patch: Partial<RouteDraft>) => void;
  errorOf?: (field: "label" | "value" | "hours") => string | undefined;
}) {
  const t = useT();
  const lang = useLang();
  const choice = (name: "purpose" | "channel", label: TextKey, values: string[]) => (
    <div class="field">
      <label for={`${prefix}-${name}`}>{t(label)}</label>
      <select
        id={`${prefix}-${name}`}
        value={route[name]}
        onChange={(event) => {
          const value = (event.target as HTMLSelectElement).value;
          // A weekend/holiday discharge route starts with weekend and holiday hours.
          change(name === "purpose" && noHours(route) ? { purpose: value, hours: initialHours(value) } : { [name]: value });
        }}
      >
        {values.map((value) => (
          <option key={value} value={value}>
            {translateMaybe(lang, `${name}_${value}`, value)}
          </option>
        ))}
      </select>
    </div>
  );
  const text = (name: "label" | "value", label: TextKey) => {
    const id = `${prefix}-${name}`;
    const error = errorOf?.(name);
    return (
      <div class="field">
        <label for={id}>{t(label)}</label>
        <input
          id={id}
          required
          value={route[name] ?? ""}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${id}-error` : undefined}
          onInput={(event) => change({ [name]: (event.target as HTMLInputElement).value })}
        />
        {error && (
          <p class="field-error" id={`${id}-error`}>
            {error}
          </p>
        )}
      </div>
    );
  };
  return (
    <>
      {choice("purpose", "routePurpose", PURPOSES)}
      {choice("channel", "routeChannel", CHANNELS)}
      {text("label", "routeLabel")}
      {text("value", "routeValue")}
      <HoursEditor prefix={prefix} unitId={unitId} route={route} change={(hours) => change({ hours })} error={errorOf?.("hours")} />
    </>
  );
}

function RouteRow({ unitId, route, index, onSaved, onDeleted }: { unitId: string; route: RouteDraft; index: number; onSaved: (route: RouteDraft) => void; onDeleted: () => void }) {
  const t = useT();
  const [draft, setDraft] = useState<RouteDraft>(route);
  const [missingHours, setMissingHours] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState(false);
  const [saved, setSaved] = useState(false);
  const prefix = `route-${route.id ?? "new"}-${index}`;
  const change = (patch: Partial<RouteDraft>) => {
    setDraft((current) => ({ ...current, ...patch }));
    setSaved(false);
    if (patch.hours) setMissingHours(false);
  };
  async function save(event: Event) {
    event.preventDefault();
    setError(null);
    setConflict(false);
    if (noHours(draft)) {
      setMissingHours(true);
      return;
    }
    try {
      const result = draftOf(await saveRoute(unitId, draft));
      setDraft(result);
      setSaved(true);
      onSaved(result);
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) setConflict(true);
      setError(err);
    }
  }
  async function remove() {
    setError(null);
    try {
      if (draft.id) await deleteRoute(draft);
      onDeleted();
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) setConflict(true);
      setError(err);
    }
  }
  return (
    <form class="route-row" onSubmit={(event) => void save(event)} aria-label={`${t("contactRoutes")} ${index + 1}`}>
      <RouteFields prefix={prefix} unitId={unitId} route={draft} change={change} errorOf={(field) => (field === "hours" && missingHours ? t("hoursMissing") : undefined)} />
      <div class="actions">
        <button type="submit" class="button-primary">
          {t("save")}
        </button>
        <button type="button" onClick={() => void remove()}>
          {t("remove")}
        </button>
      </div>
      {conflict ? (
        <p class="notice notice-warning" role="alert">
          {t("conflict")}{" "}
          <button
            type="button"
            onClick={() => {
              if (!route.id) return;
              void getRoute(route.id).then((latest) => {
                setDraft(draftOf(latest));
                setConflict(false);
                setError(null);
              });
            }}
          >
            {t("reloadLatest")}
          </button>
        </p>
      ) : (
        <ErrorNote error={error} />
      )}
      {saved && <Notice kind="success">{t("saved")}</Notice>}
    </form>
  );
}

/** `generation` changes when the routes were reloaded from the server (a closure makes new versions of them). */
function RoutesEditor({ unitId, routes, generation, onChange }: { unitId: string; routes: RouteDraft[]; generation: number; onChange: (routes: RouteDraft[]) => void }) {
  const t = useT();
  // Rows keep their state across their own saves (a new route gets its id); a removal or a reload remounts them.
  const [removals, setRemovals] = useState(0);
  return (
    <section aria-labelledby="routes-heading" class="form">
      <h2 id="routes-heading">{t("contactRoutes")}</h2>
      {routes.map((route, index) => (
        <RouteRow
          key={`${index}-${removals}-${generation}`}
          unitId={unitId}
          route={route}
          index={index}
          onSaved={(saved) => onChange(routes.map((item, i) => (i === index ? saved : item)))}
          onDeleted={() => {
            onChange(routes.filter((_, i) => i !== index));
            setRemovals((n) => n + 1);
          }}
        />
      ))}
      <button type="button" onClick={() => onChange([...routes, newRoute((routes.length + 1) * 10)])}>
        {t("addRoute")}
      </button>
    </section>
  );
}

export function AdminImport() {
  const t = useT();
  const [file, setFile] = useState<File | null>(null);
  const [dryRun, setDryRun] = useState(true);
  const [phase, setPhase] = useState<"idle" | "uploading" | "processing">("idle");
  const [progress, setProgress] = useState(0);
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  const result = useRef<HTMLDivElement>(null);

  function start(event: Event) {
    event.preventDefault();
    if (!file) return;
    setReport(null);
    setError(null);
    setProgress(0);
    setPhase("uploading");
    importDirectory(file, dryRun, (fraction) => {
      setProgress(fraction);
      if (fraction >= 1) setPhase("processing");
    })
      .promise.then((value) => setReport(value))
      .catch((err: unknown) => setError(err))
      .finally(() => {
        setPhase("idle");
        window.setTimeout(() => result.current?.focus(), 0);
      });
  }

  const rejected = report?.errors ?? [];
  return (
    <div class="admin">
      <PageHeading>{t("importTitle")}</PageHeading>
      <AdminTabs current="import" />
      <form class="form" onSubmit={start}>
        <div class="field">
          <label for="import-file">{t("importFile")}</label>
          <input id="import-file" type="file" accept=".csv,.json,text/csv,application/json" onChange={(event) => setFile((event.target as HTMLInputElement).files?.[0] ?? null)} />
        </div>
        <label class="checkbox">
          <input type="checkbox" checked={dryRun} onChange={(event) => setDryRun((event.target as HTMLInputElement).checked)} /> {t("dryRun")}
        </label>
        <div class="actions">
          <button type="submit" class="button-primary" disabled={!file || phase !== "idle"}>
            {t("startImport")}
          </button>
        </div>
      </form>
      {phase !== "idle" && (
        <div role="status" data-testid="import-progress">
          {phase === "uploading" ? <ProgressBar value={progress} label={t("importProgress")} /> : <p>{t("importProcessing")}</p>}
        </div>
      )}
      <div tabIndex={-1} ref={result} class="import-result">
        <ErrorNote error={error} />
        {report && rejected.length === 0 && (
          <Notice kind="success">
            {report.committed ? t("importDone") : t("importDryDone")} {report.records} {t("rowsOk")}
            {report.committed && ` (${t("unitsCreated")}: ${report.units_created ?? 0}, ${t("unitsUpdated")}: ${report.units_updated ?? 0})`}
          </Notice>
        )}
        {rejected.length > 0 && (
          <section aria-labelledby="rejected-heading">
            <h2 id="rejected-heading">
              {t("importRejected")} ({rejected.length})
            </h2>
            <div class="table-wrap">
              <table data-testid="import-errors">
                <thead>
                  <tr>
                    <th scope="col">{t("line")}</th>
                    <th scope="col">{t("record")}</th>
                    <th scope="col">{t("reason")}</th>
                  </tr>
                </thead>
                <tbody>
                  {rejected.map((row, index) => (
                    <tr key={index}>
                      <td>{row.line}</td>
                      <td>{row.record ?? ""}</td>
                      <td>{row.reason}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        )}
      </div>
    </div>
  );
}
