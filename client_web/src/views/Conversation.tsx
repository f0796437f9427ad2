import { useEffect, useRef, useState } from "preact/hooks";
import { describeError, query } from "../api";
import { type ClosedUnit, ClosedUnitsNotice, useClosedUnits } from "./ClosedUnits";
import { Badge, ErrorNote, Loading, PageHeading, ProgressBar, useAsync } from "../components";
import { formatBytes, formatDateTime, formatTime, plural, useLang, useT, type TextKey } from "../i18n";
import {
  connectionStore,
  discardEntry,
  messagesStore,
  outboxStore,
  progressStore,
  queueMessage,
  retryEntry,
  sendTyping,
  setConversationMessages,
  typingStore,
  type OutboxEntry,
  type PendingFile,
} from "../realtime";
import {
  addConversationUnits,
  acknowledgeMessage,
  claimMessage,
  editMessage,
  getConversation,
  listMessages,
  markRead,
  retractMessage,
  returnMessage,
} from "../services";
import { currentMe, sessionStore } from "../session";
import { AttachmentList, FilePicker } from "./Attachments";
import { MoreUnits, StartMeeting } from "./Directory";
import { useStore } from "../store";
import type { Conversation, Message, RecipientState, UnitSummary } from "../types";

const MAX_BODY = 8_000;
const DEFAULT_EDIT_WINDOW_MS = 15 * 60 * 1000;

function unitNameIn(conversation: Conversation, unitId: string | null | undefined): string {
  return conversation.participants.find((p) => p.unit_id && p.unit_id === unitId)?.unit_name ?? "";
}

function editableUntil(message: Message): number {
  return new Date(message.created_at).getTime() + DEFAULT_EDIT_WINDOW_MS;
}

export function recipientLabel(recipient: RecipientState, t: (key: TextKey) => string): string {
  if (recipient.acknowledged_at) return `${t("acknowledgedBy")} ${recipient.acknowledged_by?.name ?? ""}`.trim();
  if (recipient.returned_at) return t("returned");
  if (recipient.read_at) return recipient.read_by ? `${t("read")} (${recipient.read_by.name})` : t("read");
  if (recipient.delivered_at) return t("delivered");
  return t("pending");
}

function recipientState(recipient: RecipientState): string {
  if (recipient.acknowledged_at) return "acknowledged";
  if (recipient.returned_at) return "returned";
  if (recipient.read_at) return "read";
  if (recipient.delivered_at) return "delivered";
  return "pending";
}

function RecipientList({ message, conversation }: { message: Message; conversation: Conversation }) {
  const t = useT();
  if (!message.recipients.length) return null;
  return (
    <ul class="receipts" aria-label={t("deliveryTo")}>
      {message.recipients.map((recipient) => {
        const when = recipient.acknowledged_at ?? recipient.read_at ?? recipient.delivered_at;
        return (
          <li key={recipient.unit_id ?? recipient.user_id} class={`receipt receipt-${recipientState(recipient)}`} data-testid="receipt">
            <span class="receipt-unit">{unitNameIn(conversation, recipient.unit_id) || t("participants")}:</span>{" "}
            <span class="receipt-state">{recipientLabel(recipient, t)}</span>
            {when && (
              <>
                {" "}
                <time dateTime={when}>{formatTime(when)}</time>
              </>
            )}
            {recipient.claimed_by && !recipient.acknowledged_at && (
              <span class="claimed" data-testid="claimed">
                {" "}
                · {t("claimedBy")} {recipient.claimed_by.name}
              </span>
            )}
            {recipient.escalated_at && (
              <>
                {" "}
                <Badge kind="escalated">{t("escalated")}</Badge>
              </>
            )}
          </li>
        );
      })}
    </ul>
  );
}

/** The quoted start of the message a reply answers ("Svar till Nora Lind: «…»"), from this conversation. */
function Quote({ of, messages }: { of: string; messages: Message[] }) {
  const t = useT();
  const quoted = messages.find((m) => m.id === of);
  if (!quoted) return null;
  const text = quoted.retracted_at ? t("retracted") : (quoted.body ?? "").replace(/\s+/g, " ").slice(0, 140);
  return (
    <blockquote class="quote" data-testid="quote">
      {t("replyTo")} {quoted.sender?.name ?? "Brygga"}: «{text}»
    </blockquote>
  );
}

function MessageItem({ message, conversation, messages, onReply }: { message: Message; conversation: Conversation; messages: Message[]; onReply: (message: Message) => void }) {
  const t = useT();
  const me = currentMe();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.body ?? "");
  const mine = !!me && message.sender?.id === me.user_id;
  const myUnits = new Set(me?.units.map((unit) => unit.unit_id) ?? []);
  const mySide = message.recipients.find((r) => !!r.unit_id && myUnits.has(r.unit_id) && r.needs_ack);
  const live = !message.retracted_at && message.kind !== "system";
  const canAck = !mine && live && !!mySide && !mySide.acknowledged_at && !mySide.returned_at;
  const claimedByMe = !!mySide?.claimed_by && mySide.claimed_by.id === me?.user_id;
  const canClaim = canAck && !mySide?.claimed_by;
  // Once anyone read, acknowledged or claimed it, the text stays as they saw it: corrections are replies.
  const responded = message.recipients.some((r) => !!r.read_at || !!r.acknowledged_at || !!r.claimed_by);
  const canEdit = mine && live && !responded && Date.now() < editableUntil(message);
  const canCorrect = mine && live && responded;

  function sendCorrection() {
    const body = window.prompt(t("correctionPrompt"), message.body ?? "");
    if (!body || !body.trim()) return;
    const ack_required = message.recipients.some((r) => r.needs_ack);
    void act(async () => {
      await queueMessage({ conversation_id: message.conversation_id, body, priority: message.priority, ack_required, files: [], reply_to: message.id });
    });
  }

  async function act(action: () => Promise<void>) {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const classes = ["message", mine ? "message-mine" : "message-theirs"];
  if (message.priority === "urgent") classes.push("message-urgent");
  if (message.kind === "system") classes.push("message-system");
  const senderUnit = unitNameIn(conversation, message.sender_unit_id);
  return (
    <li class={classes.join(" ")} data-testid="message" data-message-id={message.id}>
      <article aria-label={`${message.sender?.name ?? ""}, ${formatDateTime(message.created_at)}`}>
        <header class="message-header">
          <span class="message-sender">{message.sender?.name ?? "Brygga"}</span>
          {senderUnit && <span class="message-unit">{senderUnit}</span>}
          <time dateTime={message.created_at}>{formatDateTime(message.created_at)}</time>
          {message.priority === "urgent" && <Badge kind="urgent">{t("urgent")}</Badge>}
          {message.ack_required && message.priority !== "urgent" && <Badge kind="unacked">{t("ackRequired")}</Badge>}
          {message.state === "escalated" && <Badge kind="escalated">{t("escalated")}</Badge>}
        </header>
        {message.reply_to && !message.retracted_at && <Quote of={message.reply_to} messages={messages} />}
        {message.retracted_at ? (
          <p class="message-body message-retracted">{t("retracted")}</p>
        ) : message.kind === "system" ? (
          <p class="message-body message-system-text">
            {systemText(message, t)}
            {typeof message.system?.data?.join_path === "string" && (
              <>
                {": "}
                {String(message.system.data.title ?? "")} {formatDateTime(String(message.system.data.starts_at ?? ""))}{" "}
                <a href={message.system.data.join_path}>{t("joinMeeting")}</a>
              </>
            )}
          </p>
        ) : editing ? (
          <form
            class="edit-form"
            onSubmit={(event) => {
              event.preventDefault();
              void act(async () => {
                await editMessage(message, draft);
                setEditing(false);
              });
            }}
          >
            <label for={`edit-${message.id}`}>{t("edit")}</label>
            <textarea id={`edit-${message.id}`} value={draft} maxLength={MAX_BODY} onInput={(event) => setDraft((event.target as HTMLTextAreaElement).value)} />
            <div class="actions">
              <button type="submit" class="button-primary" disabled={busy || !draft.trim()}>
                {t("save")}
              </button>
              <button type="button" onClick={() => setEditing(false)}>
                {t("cancel")}
              </button>
            </div>
          </form>
        ) : (
          <p class="message-body">
            {message.body}
            {message.edited_at && <span class="message-edited"> ({t("edited")})</span>}
          </p>
        )}
        {!message.retracted_at && message.attachments.length > 0 && (
          <AttachmentList conversationId={message.conversation_id} attachments={message.attachments} />
        )}
        <RecipientList message={message} conversation={conversation} />
        <div class="actions">
          {canAck && (
            <button type="button" class="button-primary" disabled={busy} onClick={() => void act(() => acknowledgeMessage(message))}>
              {t("acknowledge")}
            </button>
          )}
          {canClaim && (
            <button type="button" disabled={busy} onClick={() => void act(() => claimMessage(message))}>
              {t("claim")}
            </button>
          )}
          {canAck && (
            <button
              type="button"
              disabled={busy}
              onClick={() => {
                if (window.confirm(t("returnConfirm"))) void act(() => returnMessage(message));
              }}
            >
              {t("returnMisdirected")}
            </button>
          )}
          {canAck && claimedByMe && (
            <button type="button" disabled={busy} onClick={() => void act(() => claimMessage(message, true))}>
              {t("release")}
            </button>
          )}
          {live && (
            <button type="button" aria-label={`${t("reply")}: ${message.sender?.name ?? ""}, ${formatDateTime(message.created_at)}`} onClick={() => onReply(message)}>
              {t("reply")}
            </button>
          )}
          {canCorrect && (
            <button type="button" disabled={busy} onClick={sendCorrection}>
              {t("sendCorrection")}
            </button>
          )}
          {canEdit && !editing && (
            <>
              <button type="button" disabled={busy} onClick={() => setEditing(true)}>
                {t("edit")}
              </button>
              <button
                type="button"
                disabled={busy}
                onClick={() => {
                  if (window.confirm(t("retractConfirm"))) void act(() => retractMessage(message));
                }}
              >
                {t("retract")}
              </button>
            </>
          )}
        </div>
        <ErrorNote error={error} />
      </article>
    </li>
  );
}

function systemText(message: Message, t: (key: TextKey) => string): string {
  const kind = message.system?.kind ?? "";
  if (kind.includes("escalat")) return t("escalationNotice");
  if (kind.includes("meeting")) return t("meetingInvitation");
  if (kind === "unit_added") {
    const names = message.system?.data?.unit_names;
    return `${t("unitAddedNotice")} ${Array.isArray(names) ? names.map(String).join(", ") : ""}`;
  }
  return kind;
}

/** "Lägg till enhet": search the directory, confirm; the server adds them and posts a notice in the thread. */
function AddUnits({ conversation, onAdded }: { conversation: Conversation; onAdded: () => void }) {
  const t = useT();
  const [chosen, setChosen] = useState<UnitSummary[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const present = conversation.participants.map((p) => p.unit_id).filter((id): id is string => !!id);
  return (
    <form
      class="card form add-units"
      aria-labelledby="add-units-heading"
      onSubmit={(event) => {
        event.preventDefault();
        if (!chosen.length) return;
        setBusy(true);
        setError(null);
        addConversationUnits(conversation.id, chosen.map((u) => u.id))
          .then(() => {
            setChosen([]);
            onAdded();
          })
          .catch((err: unknown) => setError(err))
          .finally(() => setBusy(false));
      }}
    >
      <h2 id="add-units-heading">{t("addUnitToConversation")}</h2>
      <p class="hint">{t("addUnitsHint")}</p>
      <MoreUnits chosen={chosen} onChange={setChosen} exclude={present} legend={t("addUnitsLegend")} idBase="add-units-search" />
      <ErrorNote error={error} />
      <button type="submit" class="primary" disabled={busy || !chosen.length}>
        {t("confirmAddUnits")}
      </button>
    </form>
  );
}

function OutboxItem({ entry }: { entry: OutboxEntry }) {
  const t = useT();
  const progress = useStore(progressStore);
  return (
    <li class={`message message-mine message-pending${entry.priority === "urgent" ? " message-urgent" : ""}`} data-testid="outbox-message">
      <header class="message-header">
        <span class="message-sender">{t("you")}</span>
        {entry.priority === "urgent" && <Badge kind="urgent">{t("urgent")}</Badge>}
        <span class="hint">{entry.error ? t("error") : t("queued")}</span>
      </header>
      <p class="message-body">{entry.body}</p>
      {entry.files.length > 0 && (
        <ul class="attachments" aria-label={t("attachments")}>
          {entry.files.map((file) => (
            <li key={file.key}>
              {file.name} <span class="hint">({formatBytes(file.size)})</span>{" "}
              {file.attachment ? (
                <span class="hint">{t("uploadDone")}</span>
              ) : (
                <ProgressBar value={progress[file.key] ?? 0} label={`${t("uploading")} ${file.name}`} />
              )}
            </li>
          ))}
        </ul>
      )}
      {entry.error && (
        <>
          <p class="notice notice-error" role="alert">
            {entry.error}
          </p>
          <div class="actions">
            <button type="button" onClick={() => void retryEntry(entry.client_id)}>
              {t("send")}
            </button>
            <button type="button" onClick={() => void discardEntry(entry.client_id)}>
              {t("cancel")}
            </button>
          </div>
        </>
      )}
    </li>
  );
}

function TypingIndicator({ conversationId }: { conversationId: string }) {
  const t = useT();
  const typing = useStore(typingStore)[conversationId] ?? [];
  const [, setNow] = useState(0);
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 2_000);
    return () => window.clearInterval(timer);
  }, []);
  const active = typing.filter((info) => info.until > Date.now());
  return (
    <p class="typing" aria-live="polite" data-testid="typing">
      {active.length > 0 && `${active.map((info) => info.display_name).join(", ")} ${active.length > 1 ? t("typingMany") : t("typingOne")}`}
    </p>
  );
}

function Composer({ conversationId, closed, replyTo, clearReply }: { conversationId: string; closed: ClosedUnit[]; replyTo: Message | null; clearReply: () => void }) {
  const t = useT();
  const [body, setBody] = useState("");
  const [priority, setPriority] = useState<"normal" | "urgent">("normal");
  const [ackRequired, setAckRequired] = useState(false);
  const [files, setFiles] = useState<File[]>([]);
  const lang = useLang();
  // On a phone the composer is pinned to the bottom: its options start folded so the messages stay in view.
  const [wide] = useState(() => !window.matchMedia("(max-width: 640px)").matches);
  const [error, setError] = useState<string | null>(null);
  const textarea = useRef<HTMLTextAreaElement>(null);

  async function submit(event: Event) {
    event.preventDefault();
    if (!body.trim()) return;
    if (body.length > MAX_BODY) {
      setError(t("bodyTooLong"));
      return;
    }
    setError(null);
    const pending: PendingFile[] = files.map((file, index) => ({
      key: `${Date.now()}-${index}-${file.name}`,
      name: file.name,
      type: file.type,
      size: file.size,
      blob: file,
    }));
    try {
      await queueMessage({ conversation_id: conversationId, body, priority, ack_required: ackRequired || priority === "urgent", files: pending, reply_to: replyTo?.id ?? null });
    } catch (err) {
      setError(describeError(err));
      return;
    }
    sendTyping(conversationId, false);
    setBody("");
    setFiles([]);
    clearReply();
    setPriority("normal");
    setAckRequired(false);
    textarea.current?.focus();
  }

  return (
    <form class="composer" onSubmit={(event) => void submit(event)} aria-label={t("compose")}>
      {replyTo && (
        <div class="replying" data-testid="replying">
          <Quote of={replyTo.id} messages={[replyTo]} />
          <button type="button" onClick={clearReply}>
            {t("cancelReply")}
          </button>
        </div>
      )}
      <label for="composer-body">{t("messageLabel")}</label>
      <textarea
        id="composer-body"
        ref={textarea}
        value={body}
        rows={3}
        maxLength={MAX_BODY}
        onInput={(event) => {
          setBody((event.target as HTMLTextAreaElement).value);
          sendTyping(conversationId, true);
        }}
        onBlur={() => sendTyping(conversationId, false)}
        onKeyDown={(event) => {
          if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) void submit(event);
        }}
      />
      <details class="composer-more" open={wide}>
        <summary>
          {t("composerMore")}: {t(priority === "urgent" ? "priorityUrgent" : "priorityNormal")}
          {files.length > 0 && `, ${plural(lang, files.length, "file")}`}
        </summary>
        <div class="composer-options">
          <fieldset class="priority">
            <legend>{t("priority")}</legend>
            <label>
              <input type="radio" name="priority" value="normal" checked={priority === "normal"} onChange={() => setPriority("normal")} /> {t("priorityNormal")}
            </label>
            <label>
              <input type="radio" name="priority" value="urgent" checked={priority === "urgent"} onChange={() => setPriority("urgent")} /> {t("priorityUrgent")}
            </label>
          </fieldset>
          <label class="checkbox">
            <input type="checkbox" checked={ackRequired || priority === "urgent"} disabled={priority === "urgent"} onChange={(event) => setAckRequired((event.target as HTMLInputElement).checked)} />{" "}
            {t("ackRequired")}
          </label>
          <FilePicker files={files} onChange={setFiles} />
        </div>
      </details>
      <button type="submit" class="button-primary composer-send" disabled={!body.trim()}>
        {t("send")}
      </button>
      <ClosedUnitsNotice closed={closed} compact />
      {error && (
        <p class="notice notice-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

export function ConversationView({ id }: { id: string }) {
  const t = useT();
  const session = useStore(sessionStore);
  const connection = useStore(connectionStore);
  const conversation = useAsync((signal) => getConversation(id, signal), [id]);
  const history = useAsync(async (signal) => {
    const page = await listMessages(id, signal);
    setConversationMessages(id, page.items);
    return page;
  }, [id]);
  const messages = useStore(messagesStore)[id] ?? [];
  const outbox = useStore(outboxStore).filter((entry) => entry.conversation_id === id);
  const listEnd = useRef<HTMLDivElement>(null);
  const [booking, setBooking] = useState(false);
  const [adding, setAdding] = useState(false);
  const [added, setAdded] = useState(false);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const lastSeq = messages.length ? Math.max(...messages.map((m) => m.seq)) : null;
  const myUnits = session.status === "ready" ? session.me.units.map((unit) => unit.unit_id) : [];
  const closed = useClosedUnits(conversation.data, myUnits);
  const unitNotices = messages.filter((m) => m.kind === "system" && m.system?.kind === "unit_added").length;

  useEffect(() => {
    if (unitNotices) conversation.reload(); // someone added a unit: the participant list changed for everyone
  }, [unitNotices]);

  useEffect(() => {
    listEnd.current?.scrollIntoView({ block: "end" });
  }, [messages.length, outbox.length]);

  useEffect(() => {
    if (lastSeq === null || connection !== "online" || document.visibilityState !== "visible") return;
    markRead(id, lastSeq).catch(() => undefined);
  }, [lastSeq, connection, id]);

  if (conversation.error) return <ErrorNote error={conversation.error} retry={conversation.reload} />;
  if (!conversation.data) return <Loading />;
  const c = conversation.data;
  const me = session.status === "ready" ? session.me : null;
  return (
    <div class="conversation">
      <div class="page-top">
        <PageHeading>{c.subject}</PageHeading>
        {c.case_ref && (
          <p class="hint">
            <a href={`#/search${query({ case_ref: c.case_ref })}`} aria-label={`${t("caseEverything")} ${c.case_ref}`}>
              {c.case_ref}
            </a>
          </p>
        )}
        <p class="participants">
          {t("participants")}: {c.participants.map((p) => p.unit_name ?? p.user_name).filter(Boolean).join(", ")}
        </p>
        <ClosedUnitsNotice closed={closed} />
        <div class="actions">
          <button type="button" aria-expanded={booking} onClick={() => setBooking(!booking)}>
            {t("startMeeting")}
          </button>
          {c.kind === "units" && c.participants.some((p) => p.unit_id && myUnits.includes(p.unit_id)) && (
            <button type="button" aria-expanded={adding} aria-controls="add-units" onClick={() => { setAdding(!adding); setAdded(false); }}>
              {t("addUnitToConversation")}
            </button>
          )}
        </div>
        <p role="status" class="hint">{added ? t("unitsAdded") : ""}</p>
      </div>
      {adding && (
        <div id="add-units">
          <AddUnits
            conversation={c}
            onAdded={() => {
              setAdding(false);
              setAdded(true);
              conversation.reload();
            }}
          />
        </div>
      )}
      {booking && <StartMeeting unitIds={c.participants.map((p) => p.unit_id).filter((id): id is string => !!id)} conversationId={c.id} />}
      <ErrorNote error={history.error} retry={history.reload} />
      <section aria-label={t("messages")} class="message-section">
        {history.loading && !messages.length && <Loading />}
        <ol class="messages" aria-live="polite" aria-relevant="additions">
          {messages.map((message) => (
            <MessageItem
              key={message.id}
              message={message}
              conversation={c}
              messages={messages}
              onReply={(target) => {
                setReplyTo(target);
                document.getElementById("composer-body")?.focus();
              }}
            />
          ))}
          {outbox
            .filter((entry) => !messages.some((m) => m.client_id === entry.client_id))
            .map((entry) => (
              <OutboxItem key={entry.client_id} entry={entry} />
            ))}
        </ol>
        <div ref={listEnd} />
      </section>
      <TypingIndicator conversationId={id} />
      {me && <Composer conversationId={id} closed={closed} replyTo={replyTo} clearReply={() => setReplyTo(null)} />}
    </div>
  );
}
