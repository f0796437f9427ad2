// HTTP layer: cookie session + CSRF header, problem JSON → ApiError with a user-facing `detail`,
// 401 → the session-expired banner, uploads through XMLHttpRequest for progress events.
import { createStore } from "./store";
import { problemText, t } from "./i18n";

export interface FieldError {
  loc?: (string | number)[];
  field?: string;
  msg?: string;
  message?: string;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    public detail: string,
    public errors: FieldError[] = [],
    public etag: string | null = null,
  ) {
    super(detail);
  }
}

/** true once the server answered 401 to a logged-in client: App shows the banner and the re-login link. */
export const sessionExpired = createStore(false);
/** true while a request is answered with 401 before we ever had a session (→ login page). */
let hadSession = false;
export function markSessionAlive(): void {
  hadSession = true;
  sessionExpired.set(false);
}

let csrfToken: string | null = null;
let csrfHeaderName = "X-CSRF-Token";

/** The session's CSRF token from GET /api/v1/session; sent on every state-changing request. */
export function setCsrfToken(token: string | null | undefined, header?: string): void {
  csrfToken = token ?? null;
  if (header) csrfHeaderName = header;
}

export function csrfHeader(): Record<string, string> {
  return csrfToken ? { [csrfHeaderName]: csrfToken } : {};
}

function fieldErrorsText(errors: FieldError[]): string {
  return errors
    .map((error) => {
      const where = error.field ?? (error.loc ?? []).filter((part) => part !== "body").join(".");
      const what = error.msg ?? error.message ?? "";
      return where ? `${where}: ${what}` : what;
    })
    .filter(Boolean)
    .join("; ");
}

export async function problemFrom(status: number, text: string, etag: string | null): Promise<ApiError> {
  try {
    const body = JSON.parse(text) as { code?: string; detail?: string; errors?: FieldError[]; title?: string };
    const errors = Array.isArray(body.errors) ? body.errors : [];
    const code = body.code ?? "http_error";
    return new ApiError(status, code, problemText(code, body.detail ?? body.title ?? t("error")), errors, etag);
  } catch {
    return new ApiError(status, "http_error", `${t("error")} (HTTP ${status})`, [], etag);
  }
}

/** The request never reached the server (offline, server down): worth trying again when back online. */
export function isNetworkError(error: unknown): boolean {
  return error instanceof ApiError && error.status === 0;
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const fields = fieldErrorsText(error.errors);
    return fields && !error.detail.includes(fields) ? `${error.detail} ${fields}` : error.detail;
  }
  return t("networkError");
}

function noteUnauthorized(status: number): void {
  if (status === 401 && hadSession) sessionExpired.set(true);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  ifMatch?: string | null;
  signal?: AbortSignal;
  raw?: BodyInit;
}

export interface ApiResponse<T> {
  data: T;
  etag: string | null;
  status: number;
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json", ...(options.headers ?? {}) };
  let body: BodyInit | undefined = options.raw;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  if (method !== "GET" && method !== "HEAD") Object.assign(headers, csrfHeader());
  if (options.ifMatch) headers["If-Match"] = options.ifMatch;
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body, credentials: "same-origin", signal: options.signal });
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new ApiError(0, "network", t("networkError"));
  }
  const etag = response.headers.get("ETag");
  const text = response.status === 204 ? "" : await response.text();
  if (!response.ok) {
    noteUnauthorized(response.status);
    throw await problemFrom(response.status, text, etag);
  }
  const data = (text ? JSON.parse(text) : null) as T;
  return { data, etag, status: response.status };
}

export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request<T>(path, { signal })).data;
}

export async function post<T>(path: string, body?: unknown): Promise<T> {
  return (await request<T>(path, { method: "POST", body: body ?? {} })).data;
}

export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "" || value === false) continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export interface UploadHandle<T> {
  promise: Promise<T>;
  abort(): void;
}

/**
 * POST a file with progress reports (fetch has no upload progress). `raw`: the file is the body with
 * its own Content-Type and its name percent-encoded in X-Filename (messaging attachments, streamed by
 * the server); otherwise multipart/form-data with one field.
 */
export function upload<T>(
  path: string,
  file: File,
  onProgress: (fraction: number) => void,
  options: { raw?: boolean; fieldName?: string } = {},
): UploadHandle<T> {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<T>((resolve, reject) => {
    xhr.open("POST", path);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(csrfHeader())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = async () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve((xhr.responseText ? JSON.parse(xhr.responseText) : null) as T);
      } else {
        noteUnauthorized(xhr.status);
        reject(await problemFrom(xhr.status, xhr.responseText, xhr.getResponseHeader("ETag")));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", t("networkError")));
    xhr.onabort = () => reject(new ApiError(0, "aborted", t("cancel")));
    if (options.raw) {
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      xhr.setRequestHeader("X-Filename", encodeURIComponent(file.name));
      xhr.send(file);
      return;
    }
    const form = new FormData();
    form.append(options.fieldName ?? "file", file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
