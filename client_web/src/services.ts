// Every server endpoint the client uses, in one place (contracts of the identity, directory,
// messaging and video parts; see their docs and /api/openapi.json).
import { get, post, query, request, upload, type UploadHandle } from "./api";
import { attachmentUploadPath, connectionStore, emit } from "./realtime";
import type { AttachmentLimits, AwaitingList, Closure, ContactRoute, HoursDraft, HoursPreview, RouteDraft, InboxHours, Conversation, ConversationList, ConversationSearch, GuestLinkCreated, GuestLinkList, ImportReport, Inbox, Meeting, MeetingList, Message, MessageList, OrganisationPage, Reachability, Unit, UnitPage } from "./types";

// ---- directory ----

export interface UnitSearch {
  q?: string;
  type?: string;
  municipality?: string;
  openNow?: boolean;
  cursor?: string | null;
  limit?: number;
}

export function searchUnits(search: UnitSearch, signal?: AbortSignal): Promise<UnitPage> {
  return get<UnitPage>(
    `/api/v1/units${query({
      q: search.q,
      type: search.type,
      municipality: search.municipality,
      open_at: search.openNow ? new Date().toISOString() : null,
      cursor: search.cursor,
      limit: search.limit ?? 20,
    })}`,
    signal,
  );
}

export async function getUnit(id: string, signal?: AbortSignal): Promise<{ unit: Unit; etag: string | null }> {
  const response = await request<Unit>(`/api/v1/units/${encodeURIComponent(id)}`, { signal });
  return { unit: response.data, etag: response.etag };
}

export function getReachability(id: string, signal?: AbortSignal): Promise<Reachability> {
  return get<Reachability>(`/api/v1/units/${encodeURIComponent(id)}/reachability${query({ at: new Date().toISOString() })}`, signal);
}

/** Create (POST) or change (PATCH with If-Match: a concurrent change answers 412). */
export async function saveUnit(id: string | null, body: Record<string, unknown>, etag: string | null): Promise<{ unit: Unit; etag: string | null }> {
  const response = id
    ? await request<Unit>(`/api/v1/units/${encodeURIComponent(id)}`, { method: "PATCH", body, ifMatch: etag })
    : await request<Unit>("/api/v1/units", { method: "POST", body });
  return { unit: response.data, etag: response.etag };
}

export function listOrganisations(signal?: AbortSignal): Promise<OrganisationPage> {
  return get<OrganisationPage>(`/api/v1/organisations${query({ limit: 100 })}`, signal);
}

/** CSV or JSON as the raw body; the report lists every rejected record (all or nothing). */
export function importDirectory(file: File, dryRun: boolean, onProgress: (fraction: number) => void): UploadHandle<ImportReport> {
  const json = file.name.toLowerCase().endsWith(".json") || file.type === "application/json";
  const typed = new File([file], file.name, { type: json ? "application/json" : "text/csv" });
  return upload<ImportReport>(`/api/v1/directory/import${query({ dry_run: dryRun, format: json ? "json" : "csv" })}`, typed, onProgress, { raw: true });
}

export function versionTag(version: number | undefined): string | null {
  return version === undefined ? null : `W/"${version}"`;
}

/** The hours as the server takes them: "always", or the spans without their display text. */
export function hoursBody(hours: HoursDraft): HoursDraft {
  return hours === "always" ? hours : hours.map(({ from_day, to_day, all_day, from_time, to_time, from_date, to_date, holiday_rule, comment }) => ({ from_day, to_day, all_day, from_time, to_time, from_date, to_date, holiday_rule, comment }));
}

export async function saveRoute(unitId: string, route: RouteDraft): Promise<ContactRoute> {
  const body = {
    purpose: route.purpose,
    channel: route.channel,
    label: (route.label ?? "").trim(),
    value: route.value.trim(),
    audience: route.audience ?? "staff",
    rank: route.rank ?? 100,
    hours: hoursBody(route.hours),
  };
  const response = route.id
    ? await request<ContactRoute>(`/api/v1/routes/${encodeURIComponent(route.id)}`, { method: "PATCH", body, ifMatch: versionTag(route.version) })
    : await request<ContactRoute>(`/api/v1/units/${encodeURIComponent(unitId)}/routes`, { method: "POST", body });
  return response.data;
}

/** Unsaved hours of a (new or existing) route over the next 14 days: holidays, closures, open now, next opening. */
export function previewHours(unitId: string, routeId: string | undefined, hours: HoursDraft): Promise<HoursPreview> {
  return post<HoursPreview>(`/api/v1/units/${encodeURIComponent(unitId)}/hours-preview`, { hours: hoursBody(hours), route_id: routeId ?? null });
}

export function addClosure(unitId: string, body: { kind: string; route_id: string | null; starts_at: string; ends_at: string; reason: string }): Promise<Closure> {
  return post<Closure>(`/api/v1/units/${encodeURIComponent(unitId)}/closures`, body);
}

export async function removeClosure(id: string): Promise<void> {
  await request(`/api/v1/closures/${encodeURIComponent(id)}`, { method: "DELETE" });
}

export async function getRoute(id: string): Promise<ContactRoute> {
  return get<ContactRoute>(`/api/v1/routes/${encodeURIComponent(id)}`);
}

export async function deleteRoute(route: { id?: string; version?: number }): Promise<void> {
  await request(`/api/v1/routes/${encodeURIComponent(route.id ?? "")}`, { method: "DELETE", ifMatch: versionTag(route.version) });
}

// ---- messaging ----

/** With `preview`, each conversation's last message (a logged read of each conversation: the inbox only). */
export function listConversations(unitId: string | null, signal?: AbortSignal, preview = false): Promise<ConversationList> {
  return get<ConversationList>(`/api/v1/conversations${query({ unit_id: unitId, preview: preview || null })}`, signal);
}

export function getInbox(unitId: string, signal?: AbortSignal): Promise<Inbox> {
  return get<Inbox>(`/api/v1/units/${encodeURIComponent(unitId)}/inbox`, signal);
}

export function getAwaiting(unitId: string, signal?: AbortSignal): Promise<AwaitingList> {
  return get<AwaitingList>(`/api/v1/units/${encodeURIComponent(unitId)}/awaiting-acknowledgement`, signal);
}

export function getInboxHours(unitId: string, signal?: AbortSignal): Promise<InboxHours> {
  return get<InboxHours>(`/api/v1/units/${encodeURIComponent(unitId)}/inbox-hours`, signal);
}

export function getConversation(id: string, signal?: AbortSignal): Promise<Conversation> {
  return get<Conversation>(`/api/v1/conversations/${encodeURIComponent(id)}`, signal);
}

export function listMessages(id: string, signal?: AbortSignal): Promise<MessageList> {
  return get<MessageList>(`/api/v1/conversations/${encodeURIComponent(id)}/messages${query({ limit: 200 })}`, signal);
}

export function createConversation(body: { subject: string; case_ref?: string | null; from_unit_id: string; unit_ids: string[] }): Promise<Conversation> {
  return post<Conversation>("/api/v1/conversations", {
    subject: body.subject,
    case_ref: body.case_ref || null,
    from_unit_id: body.from_unit_id,
    unit_ids: body.unit_ids,
  });
}

/** Bring more units into a conversation (members of a unit taking part); answers the updated conversation. */
export function addConversationUnits(id: string, unitIds: string[]): Promise<Conversation> {
  return post<Conversation>(`/api/v1/conversations/${encodeURIComponent(id)}/units`, { unit_ids: unitIds });
}

/** Unit actions go over the socket; while it is down, the same operation over REST (same semantics). */
async function act(event: string, payload: Record<string, unknown>, rest: () => Promise<unknown>): Promise<void> {
  if (connectionStore.get() === "online") await emit(event, payload);
  else await rest();
}

export async function acknowledgeMessage(message: Message): Promise<void> {
  await act("message:acknowledge", { message_id: message.id }, () => post(messagePath(message, "/acknowledge")));
}

export async function claimMessage(message: Message, release = false): Promise<void> {
  await act("message:claim", { message_id: message.id, release }, () => post(messagePath(message, "/claim"), { release }));
}

/** Misdirected (felsänt): give the message back to its sender, with a reason. */
export async function returnMessage(message: Message, reason: "wrong_unit" | "wrong_patient" | "other" = "wrong_unit"): Promise<void> {
  await act("message:return", { message_id: message.id, reason }, () => post(messagePath(message, "/return"), { reason }));
}

export async function editMessage(message: Message, body: string): Promise<void> {
  await act("message:edit", { message_id: message.id, body }, () => request(messagePath(message), { method: "PATCH", body: { body } }));
}

export async function retractMessage(message: Message): Promise<void> {
  await act("message:retract", { message_id: message.id }, () => post(messagePath(message, "/retract")));
}

function messagePath(message: Message, action = ""): string {
  return `/api/v1/conversations/${encodeURIComponent(message.conversation_id)}/messages/${encodeURIComponent(message.id)}${action}`;
}

export async function markRead(conversationId: string, upTo: number): Promise<void> {
  await emit("message:read", { conversation_id: conversationId, up_to: upTo });
}

let attachmentLimits: Promise<AttachmentLimits> | null = null;

/** The server's size limit and accepted types, fetched once per page (a failure is tried again next time). */
export function getAttachmentLimits(): Promise<AttachmentLimits> {
  attachmentLimits ??= get<AttachmentLimits>("/api/v1/attachment-limits").catch((error: unknown) => {
    attachmentLimits = null;
    throw error;
  });
  return attachmentLimits;
}

export function attachmentUrl(conversationId: string, attachmentId: string): string {
  return `${attachmentUploadPath(conversationId)}/${encodeURIComponent(attachmentId)}`;
}

// ---- meetings ----

export function listMeetings(unitId: string | null, signal?: AbortSignal): Promise<MeetingList> {
  return get<MeetingList>(`/api/v1/meetings${query({ unit_id: unitId })}`, signal);
}

/** Every meeting booked from a conversation (past ones too) that I may see. */
export function meetingsOfConversation(conversationId: string, signal?: AbortSignal): Promise<MeetingList> {
  return get<MeetingList>(`/api/v1/meetings${query({ conversation_id: conversationId })}`, signal);
}

export interface SearchFilters {
  case_ref?: string | null;
  q?: string | null;
  unit_id?: string | null;
  since?: string | null;
  until?: string | null;
}

export function searchConversations(filters: SearchFilters, signal?: AbortSignal): Promise<ConversationSearch> {
  return get<ConversationSearch>(`/api/v1/conversations/search${query({ ...filters })}`, signal);
}

export function createMeeting(body: {
  title: string;
  starts_at: string;
  duration_minutes: number;
  organiser_unit_id: string | null;
  unit_ids: string[];
  conversation_id?: string | null;
}): Promise<Meeting> {
  return post<Meeting>("/api/v1/meetings", {
    title: body.title,
    starts_at: body.starts_at,
    duration_minutes: body.duration_minutes,
    organiser_unit_id: body.organiser_unit_id,
    invited_unit_ids: body.unit_ids,
    conversation_id: body.conversation_id ?? null,
  });
}

export function getMeeting(id: string, signal?: AbortSignal): Promise<Meeting> {
  return get<Meeting>(`/api/v1/meetings/${encodeURIComponent(id)}`, signal);
}

// Guest links (hosts only): the link and its one-time code come back once, at creation.
export function listGuestLinks(meetingId: string, signal?: AbortSignal): Promise<GuestLinkList> {
  return get<GuestLinkList>(`/api/v1/meetings/${encodeURIComponent(meetingId)}/guest-links`, signal);
}

export function createGuestLink(meetingId: string, label: string): Promise<GuestLinkCreated> {
  return post<GuestLinkCreated>(`/api/v1/meetings/${encodeURIComponent(meetingId)}/guest-links`, { label });
}

export async function revokeGuestLink(meetingId: string, linkId: string): Promise<void> {
  await request(`/api/v1/meetings/${encodeURIComponent(meetingId)}/guest-links/${encodeURIComponent(linkId)}`, { method: "DELETE" });
}

/** The video part's meeting page (a second Vite entry served at /meeting). */
export function meetingHref(meeting: Pick<Meeting, "id"> & { join_path?: string }): string {
  return meeting.join_path ?? `/meeting#meeting=${encodeURIComponent(meeting.id)}`;
}
