import { useEffect } from "preact/hooks";
import { Badge, ErrorNote, Loading, PageHeading, useAsync } from "../components";
import { formatTime, useT } from "../i18n";
import { notifyPermission, requestNotifications } from "../notify";
import { inboxTick } from "../realtime";
import { listConversations } from "../services";
import { selectUnit, sessionStore, unitStore } from "../session";
import { useStore } from "../store";
import type { Conversation } from "../types";

export function unreadOf(c: Conversation): number {
  return c.unread ?? c.unread_count ?? 0;
}
export function unackedOf(c: Conversation): number {
  return c.unacknowledged ?? c.unacknowledged_count ?? 0;
}
export function isUrgent(c: Conversation): boolean {
  return !!(c.urgent ?? c.has_urgent);
}

/** Urgent and escalated first, then open acknowledgements, then newest activity. */
export function sortInbox(items: Conversation[]): Conversation[] {
  const rank = (c: Conversation) => (c.escalated ? 0 : isUrgent(c) && unackedOf(c) > 0 ? 1 : isUrgent(c) ? 2 : unackedOf(c) > 0 ? 3 : 4);
  const time = (c: Conversation) => new Date(c.last_message_at ?? c.updated_at ?? c.created_at ?? 0).getTime();
  return [...items].sort((a, b) => rank(a) - rank(b) || time(b) - time(a));
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
  const unitId = useStore(unitStore);
  const tick = useStore(inboxTick);
  const state = useStore(sessionStore);
  const conversations = useAsync((signal) => listConversations(unitId, signal), [unitId]);

  useEffect(() => {
    const timer = window.setTimeout(() => conversations.reload(), 250);
    return () => window.clearTimeout(timer);
  }, [tick]);

  const myUnits = state.status === "ready" ? state.me.units.map((unit) => unit.unit_id) : [];
  const others = (c: Conversation) =>
    c.participants
      .filter((p) => !p.unit_id || !myUnits.includes(p.unit_id))
      .map((p) => p.unit_name ?? p.display_name ?? "")
      .filter(Boolean)
      .join(", ");

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
      <ErrorNote error={conversations.error} />
      {conversations.loading && !conversations.data && <Loading />}
      {conversations.data && conversations.data.items.length === 0 && <p>{t("noConversations")}</p>}
      {conversations.data && conversations.data.items.length > 0 && (
        <ul class="conversation-list" data-testid="conversation-list">
          {sortInbox(conversations.data.items).map((c) => (
            <li key={c.id} class={`conversation-item${isUrgent(c) ? " is-urgent" : ""}${unreadOf(c) > 0 ? " is-unread" : ""}`}>
              <a href={`#/conversations/${c.id}`} class="conversation-link">
                <span class="conversation-subject">{c.subject}</span>
                <span class="conversation-meta">
                  {others(c) && (
                    <span>
                      {t("with")}: {others(c)}
                    </span>
                  )}
                  {c.last_message_at && <time dateTime={c.last_message_at}>{formatTime(c.last_message_at)}</time>}
                </span>
              </a>
              <span class="badges">
                {c.escalated && <Badge kind="escalated">{t("escalated")}</Badge>}
                {isUrgent(c) && <Badge kind="urgent">{t("urgent")}</Badge>}
                {unreadOf(c) > 0 && (
                  <Badge kind="unread" label={`${unreadOf(c)} ${t("unread")}`}>
                    {unreadOf(c)} {t("unread")}
                  </Badge>
                )}
                {unackedOf(c) > 0 && (
                  <Badge kind="unacked" label={`${unackedOf(c)} ${t("unacknowledged")}`}>
                    {unackedOf(c)} {t("unacknowledged")}
                  </Badge>
                )}
              </span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
