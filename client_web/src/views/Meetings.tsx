import { ErrorNote, Loading, PageHeading, useAsync } from "../components";
import { formatDateTime, useT } from "../i18n";
import { listMeetings, meetingHref } from "../services";
import { unitStore } from "../session";
import { useStore } from "../store";

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
        <ErrorNote error={meetings.error} />
        {meetings.loading && !meetings.data && <Loading />}
        {meetings.data && items.length === 0 && <p>{t("noMeetings")}</p>}
        <ul class="meeting-list" data-testid="meeting-list">
          {items.map((meeting) => {
            const start = meeting.starts_at;
            return (
              <li key={meeting.id} class="meeting-item">
                <span class="meeting-title">{meeting.title}</span>
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
