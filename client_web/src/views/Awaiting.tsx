// "Väntar på kvittens": what the selected unit sent that still waits for acknowledgement (server-sorted).
import { useEffect, useState } from "preact/hooks";
import { Badge, ErrorNote, RouteValue, useAsync } from "../components";
import { formatDateTime, plural, useLang, useT } from "../i18n";
import { inboxTick, queueMessage } from "../realtime";
import { getAwaiting } from "../services";
import { useStore } from "../store";
import type { AwaitingMessage, AwaitingRecipient } from "../types";

function RecipientLine({ recipient }: { recipient: AwaitingRecipient }) {
  const t = useT();
  const route = recipient.escalation_route;
  const state = recipient.claimed_by
    ? `${t("claimedBy")} ${recipient.claimed_by.name}`
    : recipient.read_at
      ? t("statusReadNotAcked")
      : t("statusNotOpened");
  return (
    <li>
      <span class="awaiting-unit">{recipient.unit_name ?? t("person")}</span>: {state}
      {recipient.escalation_level > 0 && (
        <>
          {" · "}
          {t("escalatedLevel")} {recipient.escalation_level}
          {route && (
            <>
              {" "}
              {t("to")} {route.label}{" "}
              <RouteValue route={route} prefix={route.channel === "phone" ? t("call") : undefined} />
            </>
          )}
        </>
      )}
      {!route && recipient.unit_id && (
        <>
          {" · "}
          <a href={`#/directory/units/${recipient.unit_id}`}>{t("contactRoutesOf")} {recipient.unit_name}</a>
        </>
      )}
    </li>
  );
}

function AwaitingItem({ item }: { item: AwaitingMessage }) {
  const t = useT();
  const lang = useLang();
  const [reminded, setReminded] = useState(false);
  const remind = async () => {
    await queueMessage({
      conversation_id: item.conversation_id,
      body: `${t("reminderText")} ${formatDateTime(item.sent_at, "sv")}.`,
      priority: "normal", // a reminder itself needs no acknowledgement (urgent always does)
      ack_required: false,
      files: [],
    });
    setReminded(true);
  };
  return (
    <li class={`awaiting-item${item.priority === "urgent" ? " is-urgent" : ""}`} data-testid="awaiting-item">
      <div class="awaiting-head">
        <a href={`#/conversations/${item.conversation_id}`} class="conversation-subject">
          {item.subject}
          {item.priority === "urgent" && <Badge kind="urgent">{t("urgent")}</Badge>}
          {item.escalation_level > 0 && <Badge kind="escalated">{t("escalated")}</Badge>}
        </a>
        <span class="conversation-meta">
          {t("waitingSince")} <time dateTime={item.sent_at}>{formatDateTime(item.sent_at, lang)}</time>
          {item.case_ref && <span> · {item.case_ref}</span>}
        </span>
      </div>
      <ul class="awaiting-recipients">
        {item.waiting_for.map((recipient) => (
          <RecipientLine key={`${recipient.unit_id ?? recipient.user_id}`} recipient={recipient} />
        ))}
      </ul>
      <div class="actions">
        {reminded ? (
          <span role="status">{t("reminderSent")}</span>
        ) : (
          <button type="button" onClick={() => void remind()}>
            {t("remind")}
          </button>
        )}
      </div>
    </li>
  );
}

export function AwaitingAcknowledgement({ unitId }: { unitId: string }) {
  const t = useT();
  const lang = useLang();
  const tick = useStore(inboxTick);
  const list = useAsync((signal) => getAwaiting(unitId, signal), [unitId]);
  useEffect(() => {
    const timer = window.setTimeout(() => list.reload(), 250);
    return () => window.clearTimeout(timer);
  }, [tick]); // receipts, escalations and new messages all tick
  const items = list.data?.items ?? [];
  return (
    <section class="awaiting" aria-labelledby="awaiting-heading" data-testid="awaiting">
      <h2 id="awaiting-heading">
        {t("awaitingTitle")} <span class="count">({plural(lang, items.length, "message")})</span>
      </h2>
      <ErrorNote error={list.error} retry={list.reload} />
      {list.data && items.length === 0 && <p class="hint">{t("awaitingNone")}</p>}
      {items.length > 0 && (
        <ul class="awaiting-list">
          {items.map((item) => (
            <AwaitingItem key={item.message_id} item={item} />
          ))}
        </ul>
      )}
    </section>
  );
}
