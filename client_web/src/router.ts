// Hash routing: #/inbox, #/conversations/<id>, #/directory, #/directory/units/<id>, #/admin/..., #/meetings[/<id>], #/cases[/<id>], #/statistics, #/deviations, #/search?case_ref=….
import { createStore, useStore } from "./store";

export type Route =
  | { name: "inbox" }
  | { name: "conversation"; id: string }
  | { name: "directory" }
  | { name: "unit"; id: string }
  | { name: "admin" }
  | { name: "adminUnit"; id: string | null }
  | { name: "adminImport" }
  | { name: "meetings" }
  | { name: "meeting"; id: string }
  | { name: "cases" }
  | { name: "case"; id: string }
  | { name: "statistics" }
  | { name: "deviations" }
  | { name: "search" }
  | { name: "notFound" };

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, "").split("?")[0] || "/inbox";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  switch (parts[0]) {
    case undefined:
    case "inbox":
      return { name: "inbox" };
    case "conversations":
      return parts[1] ? { name: "conversation", id: parts[1] } : { name: "inbox" };
    case "directory":
      if (parts[1] === "units" && parts[2]) return { name: "unit", id: parts[2] };
      return { name: "directory" };
    case "admin":
      if (parts[1] === "import") return { name: "adminImport" };
      if (parts[1] === "units" && parts[2] === "new") return { name: "adminUnit", id: null };
      if (parts[1] === "units" && parts[2]) return { name: "adminUnit", id: parts[2] };
      return { name: "admin" };
    case "meetings":
      return parts[1] ? { name: "meeting", id: parts[1] } : { name: "meetings" };
    case "cases":
      return parts[1] ? { name: "case", id: parts[1] } : { name: "cases" };
    case "statistics":
      return { name: "statistics" };
    case "deviations":
      return { name: "deviations" };
    case "search":
      return { name: "search" };
    default:
      return { name: "notFound" };
  }
}

/** Query parameters after the hash path, e.g. #/directory?q=nacka. */
export function hashParams(): URLSearchParams {
  const [, search = ""] = location.hash.split("?");
  return new URLSearchParams(search);
}

export const routeStore = createStore<Route>(parseHash(location.hash));

window.addEventListener("hashchange", () => routeStore.set(parseHash(location.hash)));

export function useRoute(): Route {
  return useStore(routeStore);
}

export function navigate(path: string): void {
  location.hash = path.startsWith("#") ? path : `#${path}`;
}
