// Who is logged in: /api/v1/me, the login redirect, logout and the selected unit.
import { get, markSessionAlive, post, setCsrfToken } from "./api";
import { createStore } from "./store";
import type { Me } from "./types";

export type SessionState = { status: "loading" } | { status: "anonymous" } | { status: "ready"; me: Me };

export const sessionStore = createStore<SessionState>({ status: "loading" });
export const unitStore = createStore<string | null>(null);

const UNIT_KEY = "brygga.unit";

interface SessionInfo {
  authenticated: boolean;
  login_url: string;
  user: Me | null;
  csrf_header: string;
  csrf_token: string | null;
}

let loginPath = "/auth/login";

/** GET /api/v1/session never answers 401: it tells whether we are logged in and hands the CSRF token. */
export async function loadSession(): Promise<void> {
  const info = await get<SessionInfo>("/api/v1/session");
  loginPath = info.login_url || loginPath;
  if (!info.authenticated || !info.user) {
    sessionStore.set({ status: "anonymous" });
    return;
  }
  {
    const me = info.user;
    setCsrfToken(info.csrf_token, info.csrf_header);
    markSessionAlive();
    sessionStore.set({ status: "ready", me });
    const remembered = localStorage.getItem(UNIT_KEY);
    const ids = me.units.map((unit) => unit.unit_id);
    unitStore.set(remembered && ids.includes(remembered) ? remembered : (ids[0] ?? null));
  }
}

export function selectUnit(unitId: string): void {
  localStorage.setItem(UNIT_KEY, unitId);
  unitStore.set(unitId);
}

export function currentMe(): Me | null {
  const state = sessionStore.get();
  return state.status === "ready" ? state.me : null;
}

export function isAdmin(me: Me | null): boolean {
  return !!me && (me.system_roles.includes("directory_admin") || me.units.some((unit) => unit.role === "unit_admin"));
}

export function unitName(unitId: string | null | undefined): string {
  const me = currentMe();
  return me?.units.find((unit) => unit.unit_id === unitId)?.unit_name ?? "";
}

/** Full-page navigation to the OIDC login; we come back to the same hash route afterwards. */
export function loginUrl(): string {
  const next = `/${location.hash || "#/inbox"}`;
  return `${loginPath}?return_to=${encodeURIComponent(next)}`;
}

/** End this browser session, then the provider's session too (RP-initiated logout) when it offers one. */
export async function logout(): Promise<void> {
  let target = "/";
  try {
    const result = await post<{ logout_url: string | null }>("/api/v1/session/logout");
    target = result.logout_url ?? "/";
  } catch {
    /* already logged out: start over at the login page */
  }
  location.assign(target);
}
