import { useEffect, useState } from "preact/hooks";
import { meetingIcs } from "../calendar";
import { ErrorNote, Loading, Notice, PageHeading, useAsync } from "../components";
import { fill, formatDateTime, formatTime, useT, type TextKey } from "../i18n";
import { createGuestLink, getMeeting, listGuestLinks, listMeetings, meetingHref, revokeGuestLink } from "../services";
import { unitStore } from "../session";
import { useStore } from "../store";
import type { GuestLink, GuestLinkCreated, Meeting } from "../types";

/** Upcoming meetings of the selected unit; joining opens the video part's meeting page. */
export function MeetingsView() {
  const t = useT();
  const unitId = useStore(unitStore);
  const meetings = useAsync((signal) => listMeetings(unitId, signal), [unitId]);
  const items = meetings.data?.items ?? [];
  return (
    <div class="meetings">
      <PageHeading>{t("meetingsTitle")}</PageHeading>
      <p class="hint">
        <a href="#/directory">{t("newMeeting")}</a>
      </p>
      <section aria-labelledby="upcoming-heading">
        <h2 id="upcoming-heading">{t("upcomingMeetings")}</h2>
        <ErrorNote error={meetings.error} retry={meetings.reload} />
        {meetings.loading && !meetings.data && <Loading />}
        {meetings.data && items.length === 0 && <p>{t("noMeetings")}</p>}
        <ul class="meeting-list" data-testid="meeting-list">
          {items.map((meeting) => {
            const start = meeting.starts_at;
            return (
              <li key={meeting.id} class="meeting-item">
                <a class="meeting-title" href={`#/meetings/${meeting.id}`}>
                  {meeting.title}
                </a>
                <time dateTime={start}>{formatDateTime(start)}</time>
                <span class="hint">{meeting.invited_units.map((unit) => unit.unit_name).join(", ")}</span>
                <a class="button button-primary" href={meetingHref(meeting)} aria-label={`${t("joinMeeting")}: ${meeting.title}`}>
                  {t("joinMeeting")}
                </a>
              </li>
            );
          })}
        </ul>
      </section>
    </div>
  );
}

/** One meeting: title and time, who is invited, joining, and (hosts) the guest links. */
export function MeetingView({ id }: { id: string }) {
  const t = useT();
  const meeting = useAsync((signal) => getMeeting(id, signal), [id]);
  const m = meeting.data;
  return (
    <div class="meeting-page">
      <p class="breadcrumb">
        <a href="#/meetings">{t("meetingsTitle")}</a>
      </p>
      <ErrorNote error={meeting.error} retry={meeting.reload} />
      {!m && meeting.loading && <Loading />}
      {m && (
        <>
          <PageHeading>{m.title}</PageHeading>
          <p class="meeting-when" data-testid="meeting-when">
            <time dateTime={m.starts_at}>{formatDateTime(m.starts_at)}</time>–<time dateTime={m.ends_at}>{formatTime(m.ends_at).replace(/^kl\. /, "")}</time>
          </p>
          <p class="hint">
            {t("invitedUnits")}: {m.invited_units.map((unit) => unit.unit_name).join(", ")}
          </p>
          <p class="actions">
            <a class="button button-primary" href={meetingHref(m)}>
              {t("joinMeeting")}
            </a>
            <IcsLink meeting={m} />
          </p>
          {m.can_host && <GuestLinks meeting={m} />}
        </>
      )}
    </div>
  );
}

/** "Lägg till i kalendern (.ics)": the invitation as a file made in the browser (nothing more is fetched). */
export function IcsLink({ meeting }: { meeting: Meeting }) {
  const t = useT();
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    const blob = new Blob([meetingIcs(meeting, t("icsDescription"))], { type: "text/calendar;charset=utf-8" });
    const objectUrl = URL.createObjectURL(blob);
    setUrl(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [meeting.id, meeting.title, meeting.starts_at, meeting.ends_at]);
  const name = `${meeting.title.replace(/[^\p{L}\p{N} _-]+/gu, "").trim() || "mote"}.ics`;
  return url ? (
    <a class="button" href={url} download={name}>
      {t("downloadIcs")}
    </a>
  ) : null;
}

const GUEST_ROLES = ["guestRoleRelative", "guestRoleInterpreter", "guestRolePatient", "guestRoleOther"] as const;

type LinkState = "unused" | "used" | "expired" | "revoked";

function linkState(link: GuestLink, now: number): LinkState {
  if (link.revoked_at) return "revoked";
  if (link.redeemed_at) return "used";
  return Date.parse(link.expires_at) <= now ? "expired" : "unused";
}

const STATE_TEXT: Record<LinkState, [TextKey, string]> = {
  unused: ["guestUnused", "open"],
  used: ["guestUsed", "unread"],
  expired: ["guestExpired", "unacked"],
  revoked: ["guestRevoked", "urgent"],
};

/** A host invites a relative or an interpreter: link + one-time code shown once, state, revoke. */
function GuestLinks({ meeting }: { meeting: Meeting }) {
  const t = useT();
  const links = useAsync((signal) => listGuestLinks(meeting.id, signal), [meeting.id]);
  const [role, setRole] = useState<(typeof GUEST_ROLES)[number]>("guestRoleRelative");
  const [who, setWho] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<GuestLinkCreated | null>(null);
  const now = Date.now();

  async function create(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const label = who.trim() ? `${t(role)} – ${who.trim()}` : t(role);
      setCreated(await createGuestLink(meeting.id, label));
      setWho("");
      links.reload();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  }

  async function revoke(link: GuestLink) {
    setError(null);
    try {
      await revokeGuestLink(meeting.id, link.id);
      if (created?.id === link.id) setCreated(null);
      links.reload();
    } catch (exc) {
      setError(exc);
    }
  }

  return (
    <section class="card" aria-labelledby="guests-heading" data-testid="guest-links">
      <h2 id="guests-heading">{t("guestLinks")}</h2>
      <p class="hint">{t("guestLinksHelp")}</p>
      <form class="toolbar" onSubmit={create}>
        <div class="field">
          <label for="guest-role">{t("guestRole")}</label>
          <select id="guest-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as typeof role)}>
            {GUEST_ROLES.map((key) => (
              <option key={key} value={key}>
                {t(key)}
              </option>
            ))}
          </select>
        </div>
        <div class="field field-grow">
          <label for="guest-who">{t("guestWho")}</label>
          <input id="guest-who" value={who} maxLength={60} onInput={(e) => setWho((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <button type="submit" class="button-primary" disabled={busy}>
            {t("createGuestLink")}
          </button>
        </div>
      </form>
      <ErrorNote error={error} />
      {created && <CreatedLink meeting={meeting} link={created} onDone={() => setCreated(null)} />}
      <ErrorNote error={links.error} retry={links.reload} />
      {links.data && links.data.items.length === 0 && <p>{t("noGuestLinks")}</p>}
      <ul class="guest-list">
        {(links.data?.items ?? []).map((link) => {
          const state = linkState(link, now);
          const [text, badge] = STATE_TEXT[state];
          return (
            <li key={link.id} class="guest-item" data-testid="guest-link">
              <span class="meeting-title">{link.label ?? t("guest")}</span>
              <span class={`badge badge-${badge}`}>{t(text)}</span>
              <span class="hint">
                {state === "used"
                  ? fill(t("guestUsedBy"), { name: link.guest_name ?? "", when: formatTime(link.redeemed_at) })
                  : state === "revoked"
                    ? formatTime(link.revoked_at)
                    : fill(t(state === "expired" ? "guestExpiredAt" : "guestValidUntil"), { when: formatDateTime(link.expires_at) })}
              </span>
              {(state === "unused" || state === "used") && (
                <button type="button" onClick={() => void revoke(link)} aria-label={`${t("revokeGuestLink")}: ${link.label ?? t("guest")}`}>
                  {t("revokeGuestLink")}
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** The link and the code, once: copy buttons and ready texts for SMS and letter. */
function CreatedLink({ meeting, link, onDone }: { meeting: Meeting; link: GuestLinkCreated; onDone: () => void }) {
  const t = useT();
  const when = formatDateTime(meeting.starts_at);
  const vars = { title: meeting.title, when, url: link.url, code: link.code };
  const texts: [string, TextKey, string][] = [
    ["link", "guestLinkField", link.url],
    ["code", "guestCodeField", link.code],
    ["sms-link", "guestSmsLink", fill(t("guestSmsLinkText"), vars)],
    ["sms-code", "guestSmsCode", fill(t("guestSmsCodeText"), vars)],
    ["letter", "guestLetter", fill(t("guestLetterText"), vars)],
  ];
  return (
    <div class="guest-created" data-testid="guest-created">
      <Notice kind="warning">{t("guestShownOnce")}</Notice>
      {texts.map(([key, label, value]) => (
        <CopyField key={key} id={`guest-${key}`} label={t(label)} value={value} multiline={key.startsWith("sms") || key === "letter"} />
      ))}
      <button type="button" onClick={onDone}>
        {t("guestDone")}
      </button>
    </div>
  );
}

function CopyField({ id, label, value, multiline }: { id: string; label: string; value: string; multiline: boolean }) {
  const t = useT();
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  async function copy() {
    try {
      await navigator.clipboard.writeText(value);
      setCopied("yes");
    } catch {
      (document.getElementById(id) as HTMLInputElement | null)?.select();
      setCopied("no");
    }
  }
  return (
    <div class="field copy-field">
      <label for={id}>{label}</label>
      <div class="copy-row">
        {multiline ? (
          <textarea id={id} readOnly rows={value.split("\n").length + 1} value={value} />
        ) : (
          <input id={id} readOnly value={value} class={id === "guest-code" ? "code-field" : undefined} />
        )}
        <button type="button" onClick={() => void copy()} aria-label={`${t("copy")}: ${label}`}>
          {t("copy")}
        </button>
      </div>
      <span role="status" class="hint">
        {copied === "yes" ? t("copied") : copied === "no" ? t("copyFailed") : ""}
      </span>
    </div>
  );
}
