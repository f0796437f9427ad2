// One socket.io connection per tab, the persistent outbox and the `sync {since}` catch-up.
//
// Zero loss on the client side: a message is written to IndexedDB *before* anything is sent, its
// attachments (as Blobs) included. The outbox worker uploads pending files, then emits
// `message:send` with the message's fixed client_id until the server acks {ok: true}; only then is
// the entry deleted. A reload at any point restarts the worker on the stored entries, and the
// server's idempotency on (sender, client_id) turns a resend into the same message.
import { io, type Socket } from "socket.io-client";
import { ApiError, get, sessionExpired, upload } from "./api";
import { idbAll, idbDelete, idbGet, idbPut, META, OUTBOX } from "./idb";
import { problemText } from "./i18n";
import { createStore } from "./store";
import type { Attachment, EscalationEvent, Message, ReceiptEvent, RecipientState } from "./types";

export type ConnectionState = "connecting" | "online" | "offline" | "refused";

export interface PendingFile {
  key: string;
  name: string;
  type: string;
  size: number;
  blob: Blob;
  attachment?: Attachment;
}

export interface OutboxEntry {
  client_id: string;
  user_id: string;
  conversation_id: string;
  body: string;
  priority: "normal" | "urgent";
  ack_required: boolean;
  files: PendingFile[];
  reply_to?: string | null; // a correction answers the message it corrects
  created_at: string;
  error?: string | null;
}

export interface TypingInfo {
  user_id: string;
  display_name: string;
  until: number;
}

export type EscalationInfo = EscalationEvent;

const ACK_TIMEOUT_MS = 10_000;
const FATAL_CODES = new Set(["validation_error", "invalid_payload", "forbidden", "not_found", "payload_too_large"]);

export const connectionStore = createStore<ConnectionState>("connecting");
export const outboxStore = createStore<OutboxEntry[]>([]);
/** Upload progress per pending file key (0..1). */
export const progressStore = createStore<Record<string, number>>({});
/** Messages by conversation id, sorted by time. */
export const messagesStore = createStore<Record<string, Message[]>>({});
export const typingStore = createStore<Record<string, TypingInfo[]>>({});
/** Bumped whenever something that changes inbox counters happens. */
export const inboxTick = createStore(0);
/** Unread count per unit (from the inbox page's load and the `inbox` event): tab title and menu. */
export const unreadStore = createStore<Record<string, number>>({});
export const escalationStore = createStore<EscalationInfo[]>([]);

let socket: Socket | null = null;
let userId = "";
let flushing = false;
let retryTimer: number | undefined;
type NewMessageListener = (message: Message) => void;
const newMessageListeners = new Set<NewMessageListener>();

export function onNewMessage(listener: NewMessageListener): () => void {
  newMessageListeners.add(listener);
  return () => newMessageListeners.delete(listener);
}

function messageTime(message: Message): number {
  return new Date(message.created_at).getTime();
}

/** Insert or replace messages (by id, also replacing an optimistic copy with the same client_id). */
export function mergeMessages(incoming: Message[]): Message[] {
  const fresh: Message[] = [];
  messagesStore.update((all) => {
    const next = { ...all };
    for (const message of incoming) {
      const list = [...(next[message.conversation_id] ?? [])];
      const index = list.findIndex((m) => m.id === message.id || (!!message.client_id && m.client_id === message.client_id));
      if (index >= 0) list[index] = { ...list[index], ...message };
      else {
        list.push(message);
        fresh.push(message);
      }
      list.sort((a, b) => a.seq - b.seq || messageTime(a) - messageTime(b));
      next[message.conversation_id] = list;
    }
    return next;
  });
  return fresh;
}

export function setConversationMessages(conversationId: string, messages: Message[]): void {
  messagesStore.update((all) => ({ ...all, [conversationId]: [] }));
  mergeMessages(messages.map((message) => ({ ...message, conversation_id: message.conversation_id ?? conversationId })));
}

const RECEIPT_FIELDS: Record<ReceiptEvent["kind"], Partial<Record<keyof RecipientState, "at" | "by" | null>>> = {
  delivered: { delivered_at: "at" },
  read: { read_at: "at", read_by: "by" },
  acknowledged: { acknowledged_at: "at", acknowledged_by: "by" },
  claimed: { claimed_at: "at", claimed_by: "by" },
  released: { claimed_at: null, claimed_by: null },
  returned: { returned_at: "at", returned_by: "by" },
};

/** Apply a `receipt` event to the recipient row of that unit (or user) in the stored message. */
export function applyReceipt(event: ReceiptEvent): void {
  const fields = RECEIPT_FIELDS[event.kind];
  if (!event?.message_id || !fields) return;
  messagesStore.update((all) => {
    const list = all[event.conversation_id];
    const index = list?.findIndex((message) => message.id === event.message_id) ?? -1;
    if (!list || index < 0) return all;
    const message = list[index];
    const recipients = message.recipients.map((recipient) => {
      const same = event.unit_id ? recipient.unit_id === event.unit_id : recipient.user_id === event.user_id;
      if (!same) return recipient;
      const patch: Partial<RecipientState> = {};
      for (const [key, source] of Object.entries(fields)) {
        (patch as Record<string, unknown>)[key] = source === "at" ? event.at : source === "by" ? event.by : null;
      }
      return { ...recipient, ...patch };
    });
    const acknowledged = recipients.filter((r) => r.needs_ack).every((r) => r.acknowledged_at);
    const copy = [...list];
    copy[index] = { ...message, recipients, state: event.kind === "acknowledged" && acknowledged ? "acknowledged" : message.state };
    return { ...all, [event.conversation_id]: copy };
  });
}

function unwrapMessage(payload: unknown): Message | null {
  if (!payload || typeof payload !== "object") return null;
  const record = payload as { message?: Message } & Message;
  return record.message ?? (record.id ? record : null);
}

// ---- sync cursor ----------------------------------------------------------------------------

function cursorKey(): string {
  return `cursor:${userId}`;
}

async function runSync(): Promise<void> {
  if (!socket) return;
  // Live events never move the cursor, only sync replies do: a gap is always fetched again.
  let since = (await idbGet<number>(META, cursorKey()).catch(() => undefined)) ?? 0;
  const catchingUp = since > 0;
  for (let page = 0; page < 100 && socket?.connected; page += 1) {
    const reply = (await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("sync", { since })) as {
      ok: boolean;
      messages?: Message[];
      cursor?: number;
      has_more?: boolean;
    };
    if (!reply.ok) return;
    const messages = reply.messages ?? [];
    const fresh = mergeMessages(messages);
    if (catchingUp) for (const message of fresh) for (const listener of newMessageListeners) listener(message);
    if (typeof reply.cursor === "number" && reply.cursor > since) {
      since = reply.cursor;
      await idbPut(META, since, cursorKey());
    }
    if (messages.length) inboxTick.update((n) => n + 1);
    if (!messages.length || !reply.has_more) return;
  }
}

// ---- outbox ---------------------------------------------------------------------------------

async function loadOutbox(): Promise<void> {
  const entries = (await idbAll<OutboxEntry>(OUTBOX)).filter((entry) => entry.user_id === userId);
  entries.sort((a, b) => a.created_at.localeCompare(b.created_at));
  outboxStore.set(entries);
}

async function saveEntry(entry: OutboxEntry): Promise<void> {
  await idbPut(OUTBOX, entry);
  outboxStore.update((list) => {
    const index = list.findIndex((item) => item.client_id === entry.client_id);
    const copy = [...list];
    if (index >= 0) copy[index] = entry;
    else copy.push(entry);
    return copy;
  });
}

async function removeEntry(clientId: string): Promise<void> {
  await idbDelete(OUTBOX, clientId);
  outboxStore.update((list) => list.filter((item) => item.client_id !== clientId));
}

export function attachmentUploadPath(conversationId: string): string {
  return `/api/v1/conversations/${encodeURIComponent(conversationId)}/attachments`;
}

export function newClientId(): string {
  return crypto.randomUUID();
}

/** Queue a message: persisted first, then sent by the worker. */
export async function queueMessage(entry: Omit<OutboxEntry, "user_id" | "created_at" | "client_id">): Promise<string> {
  const full: OutboxEntry = { ...entry, client_id: newClientId(), user_id: userId, created_at: new Date().toISOString() };
  await saveEntry(full);
  void flushOutbox();
  return full.client_id;
}

export async function discardEntry(clientId: string): Promise<void> {
  await removeEntry(clientId);
}

async function uploadPending(entry: OutboxEntry): Promise<boolean> {
  for (const file of entry.files) {
    if (file.attachment) continue;
    const named = new File([file.blob], file.name, { type: file.type || "application/octet-stream" });
    const handle = upload<Attachment>(
      attachmentUploadPath(entry.conversation_id),
      named,
      (fraction) => progressStore.update((all) => ({ ...all, [file.key]: fraction })),
      { raw: true },
    );
    try {
      file.attachment = await handle.promise;
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 401 && error.status !== 408 && error.status !== 429) {
        await saveEntry({ ...entry, error: error.detail });
        return false;
      }
      throw error;
    }
    await saveEntry(entry);
  }
  return true;
}

async function sendEntry(entry: OutboxEntry): Promise<void> {
  if (!socket?.connected) throw new Error("offline");
  const payload = {
    conversation_id: entry.conversation_id,
    client_id: entry.client_id,
    body: entry.body,
    priority: entry.priority,
    ack_required: entry.ack_required,
    attachments: entry.files.map((file) => file.attachment!.id),
    reply_to: entry.reply_to ?? null,
  };
  const reply = (await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("message:send", payload)) as {
    ok: boolean;
    message?: Message;
    error?: { code: string; message: string };
  };
  if (reply.ok) {
    if (reply.message) mergeMessages([reply.message]);
    await removeEntry(entry.client_id);
    inboxTick.update((n) => n + 1);
    return;
  }
  if (reply.error && FATAL_CODES.has(reply.error.code)) {
    await saveEntry({ ...entry, error: problemText(reply.error.code, reply.error.message) });
    return;
  }
  throw new Error(reply.error?.code ?? "send_failed");
}

export async function flushOutbox(): Promise<void> {
  if (flushing || !socket?.connected) return;
  flushing = true;
  try {
    for (const entry of [...outboxStore.get()]) {
      if (entry.error) continue;
      if (!(await uploadPending(entry))) continue;
      await sendEntry(entry);
    }
  } catch {
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(() => void flushOutbox(), 3_000);
  } finally {
    flushing = false;
  }
}

export async function retryEntry(clientId: string): Promise<void> {
  const entry = outboxStore.get().find((item) => item.client_id === clientId);
  if (!entry) return;
  await saveEntry({ ...entry, error: null });
  void flushOutbox();
}

// ---- requests over the socket ------------------------------------------------------------------

export async function emit<T = Record<string, unknown>>(event: string, payload: unknown): Promise<T> {
  if (!socket?.connected) throw new ApiError(0, "offline", "offline");
  const reply = (await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload)) as {
    ok: boolean;
    error?: { code: string; message: string };
  } & T;
  if (!reply.ok) {
    const code = reply.error?.code ?? "error";
    throw new ApiError(400, code, problemText(code, reply.error?.message ?? "error"));
  }
  return reply;
}

let lastTyping = 0;
export function sendTyping(conversationId: string, typing: boolean): void {
  if (!socket?.connected) return;
  const now = Date.now();
  if (typing && now - lastTyping < 2_500) return;
  lastTyping = typing ? now : 0;
  socket.emit("typing", { conversation_id: conversationId, typing });
}

function onTyping(event: { conversation_id: string; user: { id: string; name: string }; typing: boolean }): void {
  if (!event?.conversation_id || !event.user || event.user.id === userId) return;
  typingStore.update((all) => {
    const now = Date.now();
    const others = (all[event.conversation_id] ?? []).filter((info) => info.user_id !== event.user.id && info.until > now);
    if (event.typing) others.push({ user_id: event.user.id, display_name: event.user.name, until: now + 6_000 });
    return { ...all, [event.conversation_id]: others };
  });
}

// ---- connection -------------------------------------------------------------------------------

export async function startRealtime(currentUserId: string): Promise<void> {
  if (socket) return;
  userId = currentUserId;
  await loadOutbox().catch(() => undefined);
  socket = io({ path: "/socket.io", transports: ["websocket", "polling"], withCredentials: true });
  connectionStore.set("connecting");
  socket.on("connect", () => {
    connectionStore.set("online");
    void runSync()
      .catch(() => undefined)
      .finally(() => void flushOutbox());
  });
  socket.on("disconnect", (reason) => {
    connectionStore.set("offline");
    if (reason === "io server disconnect") {
      // The server dropped us on purpose: logout elsewhere, back-channel logout or a disabled account.
      connectionStore.set("refused");
      void checkSessionLost();
    }
  });
  socket.on("connect_error", (error: Error & { data?: { code?: string } }) => {
    connectionStore.set(error.data?.code ? "refused" : "offline");
    if (error.data?.code) void checkSessionLost();
  });
  socket.on("message:new", (payload: unknown) => {
    const message = unwrapMessage(payload);
    if (!message) return;
    const fresh = mergeMessages([message]);
    for (const item of fresh) for (const listener of newMessageListeners) listener(item);
    inboxTick.update((n) => n + 1);
  });
  socket.on("message:updated", (payload: unknown) => {
    const message = unwrapMessage(payload);
    if (message) mergeMessages([message]);
    inboxTick.update((n) => n + 1);
  });
  socket.on("receipt", (payload: ReceiptEvent) => {
    applyReceipt(payload);
    inboxTick.update((n) => n + 1);
  });
  socket.on("typing", onTyping);
  socket.on("inbox", (payload: { unit_id?: string; unread?: number }) => {
    if (payload?.unit_id && typeof payload.unread === "number") unreadStore.update((all) => ({ ...all, [payload.unit_id as string]: payload.unread as number }));
    inboxTick.update((n) => n + 1);
  });
  // This node's live fan-out was interrupted (Redis away): catch up on what it could not deliver.
  socket.on("sync:needed", () => void runSync().catch(() => undefined));
  socket.on("escalation", (payload: EscalationInfo) => {
    escalationStore.update((list) => [...list, payload]);
    inboxTick.update((n) => n + 1);
  });
  window.addEventListener("online", () => socket?.connect());
}

async function checkSessionLost(): Promise<void> {
  try {
    const info = await get<{ authenticated: boolean }>("/api/v1/session");
    if (!info.authenticated) sessionExpired.set(true);
    else window.setTimeout(() => socket?.connect(), 2_000);
  } catch {
    /* offline: the banner already says so */
  }
}

export function stopRealtime(): void {
  socket?.disconnect();
  socket = null;
}

/** Tests and the session-expired path: reconnect after a fresh login in another tab. */
export function reconnect(): void {
  if (socket && !socket.connected) socket.connect();
}
