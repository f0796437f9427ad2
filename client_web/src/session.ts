// Who is logged in: /api/v1/me, the login redirect, logout and the selected unit.
import { ApiError, csrfHeader, get, markSessionAlive, setCsrfToken } from "./api";
import { createStore } from "./store";
import type { Me } from "./types";

export type SessionState = { status: "loading" } | { status: "anonymous" } | { status: "ready"; me: Me };

export const sessionStore = createStore<SessionState>({ status: "loading" });
export const unitStore = createStore<string | null>(null);

const UNIT_KEY = "brygga.unit";

export async function loadSession(): Promise<void> {
  try {
    const me = await get<Me>("/api/v1/me");
    setCsrfToken(me.csrf_token);
    markSessionAlive();
    sessionStore.set({ status: "ready", me });
    const remembered = localStorage.getItem(UNIT_KEY);
    const ids = me.units.map((unit) => unit.unit_id);
    unitStore.set(remembered && ids.includes(remembered) ? remembered : (ids[0] ?? null));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) sessionStore.set({ status: "anonymous" });
    else throw error;
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
  return `/auth/login?next=${encodeURIComponent(next)}`;
}

/** A real form POST so the server can redirect through RP-initiated logout at the provider. */
export function logout(): void {
  const form = document.createElement("form");
  form.method = "POST";
  form.action = "/auth/logout";
  for (const [, value] of Object.entries(csrfHeader())) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = "csrf_token";
    input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}
