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

export interface TimeSpan {
  days?: number[] | string[];
  start?: string | null;
  end?: string | null;
  all_day?: boolean;
  holiday_rule?: string;
  [key: string]: unknown;
}

export interface ContactRoute {
  id?: string;
  purpose: string;
  channel: string;
  value: string;
  audience?: string;
  rank?: number;
  hours?: TimeSpan[] | string | null;
  next_change?: string | null;
}

export interface UnitSummary {
  id: string;
  name: string;
  unit_type: string;
  organisation_id?: string;
  organisation_name?: string;
  organisation?: { id: string; name: string } | null;
  municipality_code?: string | null;
  municipality?: string | null;
  hsa_id?: string | null;
  reachable_now?: boolean | null;
  active?: boolean;
}

export interface Unit extends UnitSummary {
  parent_id?: string | null;
  address?: string | Record<string, string | null> | null;
  aliases?: string[];
  contact_routes?: ContactRoute[];
  routes?: ContactRoute[];
  version?: number;
}

export interface Reachability {
  reachable?: boolean;
  reachable_now?: boolean;
  routes: ContactRoute[];
  next_opening?: string | null;
  at?: string;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
  cursor?: string | null;
  total?: number;
}

export interface Participant {
  unit_id?: string | null;
  unit_name?: string | null;
  user_id?: string | null;
  display_name?: string | null;
}

export interface Conversation {
  id: string;
  subject: string;
  case_ref?: string | null;
  participants: Participant[];
  created_at?: string;
  updated_at?: string | null;
  last_message_at?: string | null;
  unread?: number;
  unread_count?: number;
  unacknowledged?: number;
  unacknowledged_count?: number;
  escalated?: boolean;
  urgent?: boolean;
  has_urgent?: boolean;
  claimed_by?: Person | null;
}

export interface Person {
  user_id?: string;
  id?: string;
  display_name: string;
  unit_id?: string | null;
  unit_name?: string | null;
}

export interface Attachment {
  id: string;
  filename: string;
  size: number;
  content_type: string;
  url?: string;
}

export type ReceiptState = "queued" | "delivered" | "read" | "acknowledged";

export interface Receipt {
  unit_id: string;
  unit_name?: string | null;
  state: ReceiptState | string;
  by?: Person | null;
  by_display_name?: string | null;
  user_display_name?: string | null;
  at?: string | null;
  delivered_at?: string | null;
  read_at?: string | null;
  acknowledged_at?: string | null;
  acknowledged_by?: Person | null;
}

export interface Message {
  id: string;
  conversation_id: string;
  client_id?: string | null;
  seq?: number;
  sender?: Person | null;
  sender_user_id?: string;
  sender_name?: string;
  sender_unit_id?: string | null;
  sender_unit_name?: string | null;
  body: string | null;
  priority: "normal" | "urgent" | string;
  ack_required?: boolean;
  attachments?: Attachment[];
  created_at: string;
  edited_at?: string | null;
  retracted_at?: string | null;
  reply_to?: string | null;
  receipts?: Receipt[];
  claimed_by?: Person | null;
  escalated_at?: string | null;
  escalated?: boolean;
  can_edit_until?: string | null;
  editable_until?: string | null;
}

export interface Meeting {
  id: string;
  title: string;
  starts_at?: string | null;
  start_at?: string | null;
  ends_at?: string | null;
  conversation_id?: string | null;
  join_url?: string | null;
  status?: string;
}

export interface ImportReport {
  ok?: boolean;
  committed?: boolean;
  dry_run?: boolean;
  total?: number;
  accepted?: number;
  imported?: number;
  rejected?: { line: number; reason: string; field?: string }[];
  errors?: { line: number; reason?: string; message?: string }[];
}
