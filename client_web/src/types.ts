// The server's JSON shapes, generated from its OpenAPI document into `api.gen.ts` (`make api-types`;
// a test fails when it drifts from the server). Short names here keep the views readable.
import type { components } from "./api.gen";

type Schemas = components["schemas"];

export type UnitRole = Schemas["UnitRole"];
export type Me = Schemas["Me"];

// ---- directory ----
export type TimeSpan = Schemas["TimeSpanOut"];
export type Route = Schemas["RouteOut"];
/** A contact route as the client holds it: a new one (admin editor) has no id, version or hours yet. */
export type ContactRoute = Pick<Route, "purpose" | "channel" | "label" | "value" | "audience"> & Partial<Route>;
export type TimeSpanIn = Schemas["TimeSpanIn"];
/** Opening hours as the admin edits them: time spans, or the explicit "always" (an empty list is not "always"). */
export type HoursDraft = TimeSpanIn[] | "always";
/** A contact route in the admin editor. */
export type RouteDraft = Omit<ContactRoute, "hours"> & { hours: HoursDraft };
export type HoursPreview = Schemas["HoursPreview"];
export type ReachableRoute = Schemas["ReachableRoute"];
export type UnitSummary = Schemas["UnitSummary"];
export type UnitPage = Schemas["UnitPage"];
export type Address = Schemas["Address"];
export type Closure = Schemas["ClosureOut"];
export type Unit = Schemas["UnitOut"];
export type Reachability = Schemas["Reachability"];
export type Organisation = Schemas["OrganisationOut"];
export type OrganisationPage = Schemas["OrganisationPage"];
export type ImportReport = Schemas["ImportReport"];

// ---- messaging ----
export type UserRef = Schemas["UserRef"];
export type Participant = Schemas["ParticipantOut"];
export type Conversation = Schemas["ConversationOut"];
export type ConversationList = Schemas["ConversationList"];
export type ConversationSearch = Schemas["ConversationSearch"];
export type InboxConversation = Schemas["InboxConversation"];
export type Inbox = Schemas["InboxOut"];
export type AwaitingList = Schemas["AwaitingList"];
export type InboxHours = Schemas["InboxHours"];
export type AwaitingMessage = Schemas["AwaitingMessage"];
export type AwaitingRecipient = Schemas["AwaitingRecipient"];
export type Attachment = Schemas["AttachmentOut"];
export type AttachmentLimits = Schemas["AttachmentLimits"];
export type RecipientState = Schemas["RecipientState"];
export type Message = Schemas["MessageOut"];
export type MessageList = Schemas["MessageList"];

// ---- video ----
export type Meeting = Schemas["MeetingOut"];
export type MeetingList = Schemas["MeetingList"];
export type GuestLink = Schemas["GuestLinkOut"];
export type GuestLinkCreated = Schemas["GuestLinkCreated"];
export type GuestLinkList = Schemas["GuestLinkList"];

// ---- socket.io events (not in OpenAPI; see docs/realtime.md) ----
export interface ReceiptEvent {
  message_id: string;
  conversation_id: string;
  kind: "delivered" | "read" | "acknowledged" | "claimed" | "released" | "returned";
  unit_id: string | null;
  user_id: string | null;
  by: UserRef | null;
  at: string;
}

export interface EscalationEvent {
  message_id: string;
  conversation_id: string;
  unit_id: string;
  level: number;
  at: string;
}
