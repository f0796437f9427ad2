// Shapes of the server's JSON (see /api/openapi.json). Optional fields are ones a server part may omit.

export interface UnitRole {
  unit_id: string;
  unit_name: string;
  role: string;
}

export interface Me {
  user_id: string;
  display_name: string;
  system_roles: string[];
  units: UnitRole[];
  auth_method: string;
  csrf_token?: string;
}

// ---- directory (server/directory/schemas.py) ----

export interface TimeSpan {
  from_day: number;
  to_day: number;
  all_day: boolean;
  from_time?: string | null;
  to_time?: string | null;
  from_date?: string | null;
  to_date?: string | null;
  holiday_rule?: string;
  comment?: string | null;
  text?: string;
}

export interface ContactRoute {
  id?: string;
  unit_id?: string;
  purpose: string;
  channel: string;
  label?: string;
  value: string;
  audience?: string;
  rank?: number;
  note?: string | null;
  hours?: TimeSpan[];
  until?: string | null;
  version?: number;
}

export interface UnitSummary {
  id: string;
  name: string;
  unit_type: string;
  hsa_id?: string | null;
  municipality_code?: string | null;
  municipality_name?: string | null;
  town?: string | null;
  organisation_id?: string;
  organisation_name?: string;
  organisation?: { id: string; name: string; kind?: string } | null;
  match?: string | null;
  open_routes?: ContactRoute[] | null;
  active?: boolean;
}

export interface Address {
  street?: string | null;
  postal_code?: string | null;
  town?: string | null;
}

export interface Closure {
  id: string;
  route_id?: string | null;
  kind: string;
  starts_at: string;
  ends_at: string;
  reason: string;
}

export interface Unit extends UnitSummary {
  parent_id?: string | null;
  address?: Address | null;
  aliases?: string[];
  description?: string | null;
  routes?: ContactRoute[];
  closures?: Closure[];
  version?: number;
}

export interface Reachability {
  unit_id?: string;
  reachable: boolean;
  routes: ContactRoute[];
  next_opening?: { at: string; route_id: string; purpose: string; channel: string; label: string } | null;
  closures?: Closure[];
  holiday?: string | null;
  at?: string;
}

export interface Organisation {
  id: string;
  name: string;
  kind: string;
  municipality_code?: string | null;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
  total?: number;
}

// ---- messaging (server/messaging/schemas.py) ----

export interface UserRef {
  id: string;
  name: string;
}

export interface Participant {
  unit_id?: string | null;
  unit_name?: string | null;
  user_id?: string | null;
  user_name?: string | null;
}

export interface Conversation {
  id: string;
  kind?: "units" | "direct";
  subject: string;
  case_ref?: string | null;
  created_at?: string;
  created_by?: UserRef;
  participants: Participant[];
  last_seq?: number;
}

export interface InboxConversation {
  conversation_id: string;
  subject: string;
  case_ref?: string | null;
  last_seq: number;
  unread: number;
  unacknowledged: number;
  escalated: number;
}

export interface Inbox {
  unit_id: string;
  unread: number;
  unacknowledged: number;
  escalated: number;
  escalated_sent?: number;
  claimed?: number;
  conversations: InboxConversation[];
}

export interface Attachment {
  id: string;
  conversation_id?: string;
  filename: string;
  size: number;
  content_type: string;
  created_at?: string;
}

export interface RecipientState {
  unit_id?: string | null;
  user_id?: string | null;
  needs_ack: boolean;
  delivered_at?: string | null;
  read_at?: string | null;
  read_by?: UserRef | null;
  acknowledged_at?: string | null;
  acknowledged_by?: UserRef | null;
  claimed_at?: string | null;
  claimed_by?: UserRef | null;
  returned_at?: string | null;
  returned_by?: UserRef | null;
  escalated_at?: string | null;
  escalation_level?: number;
  escalation_route?: { purpose: string; channel: string; label: string; value: string } | null;
}

export interface Message {
  id: string;
  conversation_id: string;
  seq: number;
  event_seq?: number | null;
  client_id: string;
  sender: UserRef | null;
  sender_unit_id: string | null;
  kind?: "text" | "system";
  body: string | null;
  system?: { kind: string; data: Record<string, unknown> } | null;
  priority: "normal" | "urgent";
  ack_required: boolean;
  reply_to?: string | null;
  attachments: Attachment[];
  created_at: string;
  edited_at?: string | null;
  retracted_at?: string | null;
  version?: number;
  state?: "sent" | "open" | "acknowledged" | "returned" | "escalated";
  recipients: RecipientState[];
}

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

export interface Meeting {
  id: string;
  title: string;
  starts_at: string;
  ends_at: string;
  status: string;
  organiser_unit_id: string;
  conversation_id?: string | null;
  invited_units: { unit_id: string; unit_name: string; organisation_name: string }[];
  join_path: string;
  can_host: boolean;
}

export interface ImportReport {
  format?: string;
  dry_run: boolean;
  committed: boolean;
  records: number;
  organisations_created?: number;
  organisations_updated?: number;
  units_created?: number;
  units_updated?: number;
  routes_written?: number;
  errors: { line: number; record?: string; reason: string }[];
}
