// Warns, before sending, when a receiving unit's secure-message inbox is not staffed now (issue 16 item 2).
import { RouteValue, useAsync } from "../components";
import { formatDateTime, useLang, useT } from "../i18n";
import { getInboxHours } from "../services";
import type { Conversation, InboxHours } from "../types";

export interface ClosedUnit {
  name: string;
  hours: InboxHours;
}

/** The conversation's other units whose inbox is closed now (one request per unit, on open). */
export function useClosedUnits(conversation: Conversation | null, myUnits: string[]): ClosedUnit[] {
  const others = (conversation?.participants ?? []).filter((p) => p.unit_id && !myUnits.includes(p.unit_id));
  const key = others.map((p) => p.unit_id).join(",");
  const result = useAsync(
    (signal) =>
      Promise.all(
        others.map(async (p) => ({ name: p.unit_name ?? "", hours: await getInboxHours(p.unit_id as string, signal) })),
      ),
    [key],
  );
  return (result.data ?? []).filter((unit) => !unit.hours.open_now);
}

export function ClosedUnitsNotice({ closed, compact = false }: { closed: ClosedUnit[]; compact?: boolean }) {
  const t = useT();
  const lang = useLang();
  if (closed.length === 0) return null;
  return (
    <div class="notice notice-warning closed-units" role="status" data-testid={compact ? "closed-composer" : "closed-header"}>
      {closed.map(({ name, hours }) => (
        <p key={hours.unit_id}>
          <strong>
            {name} {t("inboxClosedNow")}
          </strong>
          {hours.next_opening && (
            <>
              {" "}
              {t("nextOpening")}: {formatDateTime(hours.next_opening, lang)}.
            </>
          )}
          {!compact && hours.use_now.length > 0 && (
            <>
              {" "}
              {t("useNow")}:{" "}
              {hours.use_now.map((route, index) => (
                <span key={route.route_id ?? index}>
                  {index > 0 && ", "}
                  {route.label}{" "}
                  <RouteValue route={route} />
                </span>
              ))}
            </>
          )}
          {compact && hours.use_now.length > 0 && <> {t("urgentUseNow")}</>}
        </p>
      ))}
    </div>
  );
}
