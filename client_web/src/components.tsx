// Small shared pieces: page heading with focus management, notices, badges, async data hook.
import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { describeError, isNetworkError } from "./api";
import { formatPhone, useT } from "./i18n";
import { connectionStore } from "./realtime";

let initialPage = true;

/**
 * The page's h1. After an in-app navigation it receives focus, so screen readers announce the new
 * page and Tab continues from there; on the first page of a visit focus stays at the top (skip link).
 */
export function PageHeading({ children, id }: { children: ComponentChildren; id?: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  // A layout effect runs before the user can type into the new page, so focus is never taken from
  // a field in use; only from what the navigation removed (body) or from the menu that navigated.
  useLayoutEffect(() => {
    if (initialPage) {
      initialPage = false;
      return;
    }
    const active = document.activeElement;
    if (!active || active === document.body || !active.isConnected || active.closest("nav")) {
      ref.current?.focus();
    }
  }, []);
  return (
    <h1 ref={ref} id={id} tabIndex={-1} class="page-heading">
      {children}
    </h1>
  );
}

/** An error; with `retry` (a page's failed load) also "Försök igen", and when the server could not be
 * reached, that the page loads again by itself once the connection is back (see useAsync). */
export function ErrorNote({ error, retry }: { error: unknown; retry?: () => void }) {
  const t = useT();
  if (!error) return null;
  return (
    <div class="notice notice-error" role="alert" data-testid="load-error">
      <p>
        {describeError(error)}
        {retry && isNetworkError(error) && ` ${t("retriesOnReconnect")}`}
      </p>
      {retry && (
        <button type="button" onClick={retry}>
          {t("tryAgain")}
        </button>
      )}
    </div>
  );
}

export function Notice({ kind, children }: { kind: "info" | "success" | "warning" | "error"; children: ComponentChildren }) {
  return (
    <p class={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </p>
  );
}

export function Badge({ kind, children, label }: { kind: string; children: ComponentChildren; label?: string }) {
  return (
    <span class={`badge badge-${kind}`} aria-label={label}>
      {children}
    </span>
  );
}

/** A contact route's value as people read it: phone numbers in Swedish national format as `tel:` links,
 * e-mail as `mailto:`, a unit's Brygga inbox by name (never its internal `brygga:unit:` address). */
export function RouteValue({ route, prefix }: { route: { channel: string; value: string }; prefix?: string }) {
  const t = useT();
  if (route.channel === "phone") {
    const shown = formatPhone(route.value);
    return <a href={`tel:${route.value.replace(/[^\d+]/g, "")}`}>{prefix ? `${prefix} ${shown}` : shown}</a>;
  }
  if (route.channel === "email") return <a href={`mailto:${route.value}`}>{route.value}</a>;
  if (route.value.startsWith("brygga:")) return <span>{t("bryggaInbox")}</span>;
  return <span>{route.value}</span>;
}

export function Loading() {
  const t = useT();
  return (
    <p class="loading" role="status">
      {t("loading")}
    </p>
  );
}

export function ProgressBar({ value, label }: { value: number; label: string }) {
  const percent = Math.round(value * 100);
  return (
    <span class="progress-wrap">
      <progress max={100} value={percent} aria-label={label}>
        {percent}%
      </progress>
      <span class="progress-text">{percent}%</span>
    </span>
  );
}

export interface AsyncState<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (data: T) => void;
}

/** Run `load` whenever `deps` change; aborts the previous run. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    load(controller.signal)
      .then((value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setError(null);
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted || (err as Error)?.name === "AbortError") return;
        setError(err);
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  // A load that failed for want of a connection runs again by itself when the connection is back.
  useEffect(() => (isNetworkError(error) ? onReconnect(() => setTick((n) => n + 1)) : undefined), [error]);
  return { data, error, loading, reload: () => setTick((n) => n + 1), setData };
}

/** Call `run` once the browser is online and the server's socket is connected again; returns the unsubscribe. */
export function onReconnect(run: () => void): () => void {
  const online = () => {
    if (connectionStore.get() === "online") run();
  };
  window.addEventListener("online", online);
  const stop = connectionStore.subscribe((state) => state === "online" && run());
  return () => {
    window.removeEventListener("online", online);
    stop();
  };
}

/** A value that follows `value` after `ms` of quiet (search as you type). */
export function useDebounced<T>(value: T, ms: number): T {
  const [current, setCurrent] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setCurrent(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return current;
}

export const MUNICIPALITIES: [string, string][] = [
  ["0114", "Upplands Väsby"],
  ["0115", "Vallentuna"],
  ["0117", "Österåker"],
  ["0120", "Värmdö"],
  ["0123", "Järfälla"],
  ["0125", "Ekerö"],
  ["0126", "Huddinge"],
  ["0127", "Botkyrka"],
  ["0128", "Salem"],
  ["0136", "Haninge"],
  ["0138", "Tyresö"],
  ["0139", "Upplands-Bro"],
  ["0140", "Nykvarn"],
  ["0160", "Täby"],
  ["0162", "Danderyd"],
  ["0163", "Sollentuna"],
  ["0180", "Stockholm"],
  ["0181", "Södertälje"],
  ["0182", "Nacka"],
  ["0183", "Sundbyberg"],
  ["0184", "Solna"],
  ["0186", "Lidingö"],
  ["0187", "Vaxholm"],
  ["0188", "Norrtälje"],
  ["0191", "Sigtuna"],
  ["0192", "Nynäshamn"],
];

export function municipalityName(code: string | null | undefined): string {
  return MUNICIPALITIES.find(([value]) => value === code)?.[1] ?? code ?? "";
}

export const UNIT_TYPES = [
  "ward",
  "primary_care",
  "home_care",
  "nursing_home",
  "short_term_care",
  "municipal_health_care",
  "social_services",
] as const;
