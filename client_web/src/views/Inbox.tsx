import { useEffect } from "preact/hooks";
import { isNetworkError } from "../api";
import { Badge, ErrorNote, Loading, onReconnect, PageHeading, useAsync } from "../components";
import { fill, formatTime, plural, useLang, useT, type TextKey } from "../i18n";
import { notifyPermission, requestNotifications } from "../notify";
import { inboxTick, unreadStore } from "../realtime";
import { messagesStore } from "../realtime";
import { getInbox, listConversations } from "../services";
import { selectUnit, sessionStore, unitStore } from "../session";
import { useStore } from "../store";
import { AwaitingAcknowledgement } from "./Awaiting";
import type { Conversation, Inbox, Message } from "../types";

export interface InboxRow {
  id: string;
  subject: string;
  caseRef: string | null;
  others: string;
  unread: number;
  unacknowledged: number;
  escalated: number;
  urgentOpen: boolean;
  lastSeq: number;
  lastAt: string | null;
  preview: string | null;
}

/** "Olle Berg: Vi behöver …" from the newest message this tab holds (live), else the server's preview. */
function previewOf(conversation: Conversation, live: Message | null, t: (key: TextKey) => string): string | null {
  const server = conversation.last_message;
  const people = live && live.kind === "text" && (!server || live.created_at >= server.created_at) ? live : null;
  const sender = people ? people.sender?.name : server?.sender_name;
  const retracted = people ? !!people.retracted_at : server?.retracted;
  const text = people ? people.body : server?.text;
  const files = people ? people.attachments.length : (server?.attachments ?? 0);
  if (!people && !server) return null;
  const what = retracted ? t("retracted") : text ? text.replace(/\s+/g, " ").slice(0, 120) : files ? t("attachments") : "";
  return sender ? `${sender}: ${what}` : what;
}

/** Escalated first, then open urgent messages, then open acknowledgements, then newest activity. */
export function sortInbox(rows: InboxRow[]): InboxRow[] {
  const rank = (row: InboxRow) => (row.escalated > 0 ? 0 : row.urgentOpen ? 1 : row.unacknowledged > 0 ? 2 : row.unread > 0 ? 3 : 4);
  return [...rows].sort((a, b) => rank(a) - rank(b) || b.lastSeq - a.lastSeq);
}

/** Does this unit have an urgent message in the conversation that nobody acknowledged yet? */
function urgentOpen(messages: Message[], unitId: string | null): boolean {
  return messages.some(
    (m) => m.priority === "urgent" && !m.retracted_at && m.recipients.some((r) => r.unit_id === unitId && r.needs_ack && !r.acknowledged_at),
  );
}

interface InboxData {
  conversations: Conversation[];
  inbox: Inbox | null;
  /** Set when the server could not be reached: the last inbox fetched in this tab, from this time. */
  offlineSince?: string;
}

/** The last inbox fetched per unit (memory only, this tab): shown while the server cannot be reached. */
const lastInbox = new Map<string, { at: string; data: InboxData }>();

async function loadInbox(unitId: string | null, signal: AbortSignal): Promise<InboxData> {
  try {
    const [conversations, inbox] = await Promise.all([
      listConversations(unitId, signal, true),
      unitId ? getInbox(unitId, signal).catch(() => null) : Promise.resolve(null),
    ]);
    const data = { conversations: conversations.items, inbox };
    lastInbox.set(unitId ?? "", { at: new Date().toISOString(), data });
    return data;
  } catch (error) {
    const cached = lastInbox.get(unitId ?? "");
    if (!isNetworkError(error) || !cached) throw error;
    return { ...cached.data, offlineSince: cached.at };
  }
}

function UnitSwitcher() {
  const t = useT();
  const state = useStore(sessionStore);
  const unitId = useStore(unitStore);
  if (state.status !== "ready" || state.me.units.length === 0) return null;
  return (
    <div class="field field-inline">
      <label for="unit-switcher">{t("unitSwitcher")}</label>
      <select id="unit-switcher" value={unitId ?? ""} onChange={(event) => selectUnit((event.target as HTMLSelectElement).value)}>
        {state.me.units.map((unit) => (
          <option key={unit.unit_id} value={unit.unit_id}>
            {unit.unit_name}
          </option>
        ))}
      </select>
    </div>
  );
}

function NotificationToggle() {
  const t = useT();
  const permission = useStore(notifyPermission);
  if (permission === "unsupported") return null;
  if (permission === "granted") return <p class="hint">{t("notifyOn")}</p>;
  if (permission === "denied") return <p class="hint">{t("notifyDenied")}</p>;
  return (
    <button type="button" onClick={() => void requestNotifications()}>
      {t("notifyEnable")}
    </button>
  );
}

export function InboxView() {
  const t = useT();
  const lang = useLang();
  const unitId = useStore(unitStore);
  const tick = useStore(inboxTick);
  const state = useStore(sessionStore);
  const conversations = useAsync((signal) => loadInbox(unitId, signal), [unitId]);
  const messages = useStore(messagesStore);

  useEffect(() => {
    const timer = window.setTimeout(() => conversations.reload(), 250);
    return () => window.clearTimeout(timer);
  }, [tick]);

  const offlineSince = conversations.data?.offlineSince;
  useEffect(() => (offlineSince ? onReconnect(conversations.reload) : undefined), [offlineSince]);

  const unread = conversations.data?.inbox?.unread;
  useEffect(() => {
    if (unitId && typeof unread === "number") unreadStore.update((all) => ({ ...all, [unitId]: unread }));
  }, [unitId, unread]);

  const myUnits = state.status === "ready" ? state.me.units.map((unit) => unit.unit_id) : [];
  const rows: InboxRow[] = (conversations.data?.conversations ?? []).map((c) => {
    const counts = conversations.data?.inbox?.conversations.find((item) => item.conversation_id === c.id);
    const list = messages[c.id] ?? [];
    const last = list.length ? list[list.length - 1] : null;
    const preview = previewOf(c, last, t);
    return {
      id: c.id,
      subject: c.subject,
      caseRef: c.case_ref ?? null,
      others: c.participants
        .filter((p) => !p.unit_id || !myUnits.includes(p.unit_id))
        .map((p) => p.unit_name ?? p.user_name ?? "")
        .filter(Boolean)
        .join(", "),
      unread: counts?.unread ?? 0,
      unacknowledged: counts?.unacknowledged ?? 0,
      escalated: counts?.escalated ?? 0,
      urgentOpen: urgentOpen(list, unitId),
      lastSeq: Math.max(c.last_seq ?? 0, counts?.last_seq ?? 0, last?.seq ?? 0),
      lastAt: last?.created_at ?? c.last_message?.created_at ?? c.created_at ?? null,
      preview,
    };
  });

  return (
    <div class="inbox">
      <div class="page-top">
        <PageHeading>{t("inboxTitle")}</PageHeading>
        <div class="toolbar">
          <UnitSwitcher />
          <NotificationToggle />
          <a class="button" href="#/directory">
            {t("newConversation")}
          </a>
        </div>
      </div>
      {state.status === "ready" && state.me.units.length === 0 && <p class="notice notice-info">{t("noUnits")}</p>}
      <ErrorNote error={conversations.error} retry={conversations.reload} />
      {offlineSince && (
        <div class="notice notice-warning" role="status" data-testid="offline-inbox">
          <p>{fill(t("offlineInbox"), { when: formatTime(offlineSince) })}</p>
          <button type="button" onClick={conversations.reload}>
            {t("tryAgain")}
          </button>
        </div>
      )}
      {conversations.loading && !conversations.data && <Loading />}
      {conversations.data && rows.length === 0 && <p>{t("noConversations")}</p>}
      {unitId && <AwaitingAcknowledgement unitId={unitId} />}
      {rows.length > 0 && <h2 id="conversations-heading">{t("conversations")}</h2>}
      {rows.length > 0 && (
        <ul class="conversation-list" aria-labelledby="conversations-heading" data-testid="conversation-list">
          {sortInbox(rows).map((row) => (
            <li key={row.id} class={`conversation-item${row.urgentOpen ? " is-urgent" : ""}${row.unread > 0 ? " is-unread" : ""}`} data-testid="conversation-item">
              <a href={`#/conversations/${row.id}`} class="conversation-link">
                <span class="conversation-subject">{row.subject}</span>
                {row.preview && <span class="conversation-preview">{row.preview}</span>}
                <span class="conversation-meta">
                  {row.others && (
                    <span>
                      {t("with")}: {row.others}
                    </span>
                  )}
                  {row.caseRef && <span>{row.caseRef}</span>}
                  {row.lastAt && <time dateTime={row.lastAt}>{formatTime(row.lastAt)}</time>}
                </span>
                <span class="badges">
                  {row.escalated > 0 && <Badge kind="escalated">{t("escalated")}</Badge>}
                  {row.urgentOpen && <Badge kind="urgent">{t("urgent")}</Badge>}
                  {row.unread > 0 && <Badge kind="unread">{plural(lang, row.unread, "unread")}</Badge>}
                  {row.unacknowledged > 0 && <Badge kind="unacked">{plural(lang, row.unacknowledged, "unacknowledged")}</Badge>}
                </span>
              </a>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
