// Desktop notifications carry no message text: only "Nytt meddelande i <enhet>" (privacy on shared screens).
import { t } from "./i18n";
import { onNewMessage } from "./realtime";
import { routeStore } from "./router";
import { currentMe } from "./session";
import { createStore } from "./store";
import type { Message } from "./types";

export const notifyPermission = createStore<NotificationPermission | "unsupported">(
  "Notification" in window ? Notification.permission : "unsupported",
);

let started = false;

export async function requestNotifications(): Promise<void> {
  if (!("Notification" in window)) return;
  notifyPermission.set(await Notification.requestPermission());
}

/** Which of my units a new message is for: the recipient unit that I am a member of. */
export function recipientUnitName(message: Message): string {
  const me = currentMe();
  if (!me) return "";
  const candidates = message.recipients.map((recipient) => recipient.unit_id);
  const mine = me.units.find((unit) => candidates.includes(unit.unit_id));
  return (mine ?? me.units[0])?.unit_name ?? "";
}

export function notificationText(message: Message): string {
  return `${t("newMessageIn")} ${recipientUnitName(message)}`.trim();
}

export function startNotifications(): void {
  if (started) return;
  started = true;
  onNewMessage((message) => {
    const me = currentMe();
    if (!me || message.sender?.id === me.user_id || message.kind === "system") return;
    const route = routeStore.get();
    const looking = route.name === "conversation" && route.id === message.conversation_id && document.visibilityState === "visible";
    if (looking || notifyPermission.get() !== "granted") return;
    const notification = new Notification("Brygga", { body: notificationText(message), tag: `conversation-${message.conversation_id}` });
    notification.onclick = () => {
      window.focus();
      location.hash = `#/conversations/${message.conversation_id}`;
    };
  });
}
