// Dates and times the Swedish way, independent of the browser's locale and time zone: the booking form's
// day and time choices (Stockholm wall time → an instant) and the .ics invitation of a meeting.
import { TIME_ZONE, type Lang } from "./i18n";

const parts = new Intl.DateTimeFormat("sv-SE", {
  timeZone: TIME_ZONE,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

/** Stockholm's wall-clock date and time of an instant: ["2026-12-03", "09:30"]. */
export function stockholmParts(date: Date): [string, string] {
  const get = (type: string) => parts.formatToParts(date).find((part) => part.type === type)?.value ?? "00";
  return [`${get("year")}-${get("month")}-${get("day")}`, `${get("hour")}:${get("minute")}`];
}

/** The instant at which Stockholm's clock shows this date and time (daylight saving time included). */
export function fromStockholm(day: string, time: string): Date {
  const [year, month, date] = day.split("-").map(Number);
  const [hour, minute] = time.split(":").map(Number);
  const wall = Date.UTC(year, month - 1, date, hour, minute);
  let instant = wall;
  for (let i = 0; i < 2; i++) {
    const [shownDay, shownTime] = stockholmParts(new Date(instant));
    const [sy, sm, sd] = shownDay.split("-").map(Number);
    const [sh, smin] = shownTime.split(":").map(Number);
    instant -= Date.UTC(sy, sm - 1, sd, sh, smin) - wall; // move by how far Stockholm's clock is off
  }
  return new Date(instant);
}

/** The next `count` days in Stockholm, today first, as "YYYY-MM-DD". */
export function comingDays(count: number, from = new Date()): string[] {
  const [today] = stockholmParts(from);
  const [year, month, day] = today.split("-").map(Number);
  return Array.from({ length: count }, (_, i) => new Date(Date.UTC(year, month - 1, day + i)).toISOString().slice(0, 10));
}

/** Quarter hours from 06:00 to 21:45. */
export const QUARTER_HOURS = Array.from({ length: 64 }, (_, i) => {
  const minutes = 6 * 60 + i * 15;
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
});

function icsText(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/;/g, "\\;").replace(/,/g, "\\,").replace(/\r?\n/g, "\\n");
}

function icsTime(iso: string): string {
  return new Date(iso).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** Lines longer than 75 octets continue on the next line after a space (RFC 5545 3.1). */
function fold(line: string): string {
  const out: string[] = [];
  let current = "";
  for (const char of line) {
    if (new TextEncoder().encode(current + char).length > (out.length ? 74 : 75)) {
      out.push(current);
      current = "";
    }
    current += char;
  }
  out.push(current);
  return out.join("\r\n ");
}

/** An iCalendar invitation for a meeting: title, start and end, and the link to join. */
export function meetingIcs(meeting: { id: string; title: string; starts_at: string; ends_at: string; join_path: string }, description: string): string {
  const url = `${location.origin}${meeting.join_path}`;
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Brygga//Videomöte//SV",
    "METHOD:PUBLISH",
    "BEGIN:VEVENT",
    `UID:${meeting.id}@brygga`,
    `DTSTAMP:${icsTime(new Date().toISOString())}`,
    `DTSTART:${icsTime(meeting.starts_at)}`,
    `DTEND:${icsTime(meeting.ends_at)}`,
    `SUMMARY:${icsText(meeting.title)}`,
    `DESCRIPTION:${icsText(`${description} ${url}`)}`,
    `URL:${url}`,
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ]
    .map(fold)
    .join("\r\n");
}

/** "torsdag 3 dec." / "Thursday 3 Dec" for a "YYYY-MM-DD" day. */
export function formatDay(day: string, lang: Lang): string {
  return new Intl.DateTimeFormat(lang === "sv" ? "sv-SE" : "en-GB", { timeZone: "UTC", weekday: "long", day: "numeric", month: "short" }).format(new Date(`${day}T12:00:00Z`));
}
