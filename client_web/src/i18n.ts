// Swedish first, English second. Keys are English identifiers; every user-facing text lives here.
import { useStore, createStore } from "./store";

export type Lang = "sv" | "en";

const sv = {
  tagline: "Säker kommunikation för samordnad utskrivning",
  serverStatus: "Serverstatus",
  healthy: "Servern är i drift",
  unhealthy: "Servern svarar inte",
  checking: "Kontrollerar…",
  version: "Version",
  switchLang: "English",
  switchLangLabel: "Byt språk till engelska",
  skipToContent: "Hoppa till innehållet",
  mainNav: "Huvudmeny",
  navInbox: "Inkorg",
  navDirectory: "Katalog",
  navMeetings: "Möten",
  navAdmin: "Administration",
  loading: "Laddar…",
  login: "Logga in",
  loginIntro: "Logga in med ditt konto och din engångskod (TOTP) för att läsa och skicka meddelanden.",
  logout: "Logga ut",
  loggedInAs: "Inloggad som",
  sessionExpired: "Din session har gått ut. Logga in igen för att fortsätta – osända meddelanden sparas.",
  loginAgain: "Logga in igen",
  offline: "Ingen anslutning till servern. Meddelanden du skickar sparas och skickas när anslutningen är tillbaka.",
  reconnected: "Ansluten igen – hämtar det du missat.",
  dismiss: "Stäng",
  error: "Något gick fel",
  networkError: "Servern kunde inte nås. Kontrollera anslutningen och försök igen.",
  notFoundPage: "Sidan finns inte.",
  forbiddenPage: "Du saknar behörighet till den här sidan.",
  // inbox
  inboxTitle: "Inkorg",
  unitSwitcher: "Enhet",
  noUnits: "Du är inte medlem i någon enhet. Be en administratör lägga till dig.",
  noConversations: "Inga konversationer ännu.",
  unread: "olästa",
  unacknowledged: "okvitterade",
  escalated: "Eskalerad",
  urgent: "Brådskande",
  newConversation: "Ny konversation",
  notifyEnable: "Slå på skrivbordsnotiser",
  notifyOn: "Skrivbordsnotiser är på",
  notifyDenied: "Skrivbordsnotiser är blockerade i webbläsaren.",
  newMessageIn: "Nytt meddelande i",
  with: "Med",
  lastActivity: "Senaste aktivitet",
  // conversation
  conversation: "Konversation",
  messages: "Meddelanden",
  messageLabel: "Meddelande",
  compose: "Skriv ett meddelande",
  send: "Skicka",
  sending: "Skickas…",
  queued: "Väntar på att skickas",
  priority: "Prioritet",
  priorityNormal: "Normal",
  priorityUrgent: "Brådskande",
  ackRequired: "Kräver kvittens",
  attach: "Bifoga fil",
  attachments: "Bilagor",
  uploading: "Laddar upp",
  uploadDone: "Uppladdad",
  removeAttachment: "Ta bort bilaga",
  acknowledge: "Kvittera",
  acknowledgedBy: "Kvitterat av",
  claim: "Jag tar detta",
  claimedBy: "Tas om hand av",
  release: "Släpp till enheten",
  returnMisdirected: "Felsänt – returnera",
  returnConfirm: "Returnera meddelandet till avsändaren som felsänt?",
  returned: "Returnerat (felsänt)",
  meetingInvitation: "Inbjudan till möte",
  delivered: "Levererat",
  read: "Läst",
  acknowledged: "Kvitterat",
  pending: "Ej levererat",
  deliveryTo: "Leveransstatus per mottagande enhet",
  edit: "Redigera",
  save: "Spara",
  cancel: "Avbryt",
  retract: "Återkalla",
  retractConfirm: "Återkalla meddelandet? Originalet sparas i journalen över ändringar.",
  edited: "redigerat",
  retracted: "Meddelandet har återkallats",
  typingOne: "skriver…",
  typingMany: "skriver…",
  you: "Du",
  escalationNotice: "Meddelandet har eskalerats eftersom ingen kvitterat i tid",
  subject: "Ämne",
  caseRef: "Ärendereferens (pseudonym, aldrig personnummer)",
  fromUnit: "Från enhet",
  toUnit: "Till enhet",
  create: "Skapa",
  startConversation: "Starta konversation",
  startMeeting: "Boka möte",
  participants: "Deltagare",
  bodyTooLong: "Meddelandet är för långt.",
  // directory
  directoryTitle: "Kontaktkatalog",
  search: "Sök enhet",
  searchHint: "Skriv namn, ort eller HSA-id. Stavfel och å/ä/ö hanteras.",
  filterMunicipality: "Kommun",
  filterType: "Typ av enhet",
  filterOpenNow: "Nåbar nu",
  all: "Alla",
  results: "träffar",
  noResults: "Inga enheter matchar sökningen.",
  loadMore: "Visa fler",
  reachableNow: "Nåbar nu",
  notReachableNow: "Inte nåbar nu",
  nextOpening: "Nästa öppning",
  until: "till",
  closures: "Stängt och meddelanden",
  routeLabel: "Benämning",
  contactRoutes: "Kontaktvägar",
  routePurpose: "Syfte",
  routeChannel: "Kanal",
  routeValue: "Kontakt",
  routeHours: "Tider",
  address: "Adress",
  organisation: "Organisation",
  hsaId: "HSA-id",
  unitType: "Typ",
  unitNotFound: "Enheten finns inte.",
  editUnit: "Redigera enhet",
  unitDetails: "Enhetsuppgifter",
  // unit types
  type_ward: "Vårdavdelning",
  type_primary_care: "Vårdcentral",
  type_home_care: "Hemtjänst",
  type_nursing_home: "Särskilt boende",
  type_short_term_care: "Korttidsboende",
  type_municipal_health_care: "Kommunal hälso- och sjukvård",
  type_social_services: "Socialtjänst",
  // purposes / channels
  purpose_general: "Allmänt",
  purpose_discharge_planning: "Utskrivningsplanering",
  purpose_weekend_discharge: "Utskrivning helg",
  purpose_on_call: "Jour",
  purpose_switchboard: "Växel",
  purpose_medication: "Läkemedel",
  purpose_other: "Övrigt",
  channel_phone: "Telefon",
  channel_secure_message: "Säkert meddelande",
  channel_video: "Video",
  channel_email: "E-post",
  channel_fax: "Fax",
  channel_sip_text: "Texttelefon",
  // admin
  adminTitle: "Administration av katalogen",
  adminUnits: "Enheter",
  adminImport: "Import",
  newUnit: "Ny enhet",
  name: "Namn",
  municipalityCode: "Kommunkod",
  active: "Aktiv",
  saved: "Sparat.",
  conflict: "Någon annan har ändrat enheten medan du redigerade. Dina ändringar finns kvar nedan; se den senaste versionen och spara igen.",
  reloadLatest: "Hämta senaste versionen",
  required: "Obligatoriskt fält",
  invalidHsa: "HSA-id ska se ut som SE1234567890-abc (högst 31 tecken).",
  invalidMunicipality: "Kommunkoden är fyra siffror.",
  formErrors: "Formuläret innehåller fel:",
  deleteUnit: "Ta bort enhet",
  remove: "Ta bort",
  addRoute: "Lägg till kontaktväg",
  importTitle: "Importera kataloguppgifter",
  importFile: "Fil (CSV eller JSON)",
  dryRun: "Provkör utan att spara",
  startImport: "Starta import",
  importProgress: "Importförlopp",
  importDone: "Importen är klar.",
  importDryDone: "Provkörningen är klar – inget sparades.",
  importRejected: "Avvisade rader – inget sparades",
  line: "Rad",
  reason: "Orsak",
  rowsOk: "poster godkända",
  record: "Post",
  importProcessing: "Filen är uppladdad – servern kontrollerar och sparar posterna…",
  unitsCreated: "nya enheter",
  unitsUpdated: "ändrade enheter",
  // meetings
  meetingsTitle: "Möten",
  upcomingMeetings: "Kommande möten",
  noMeetings: "Inga kommande möten.",
  joinMeeting: "Anslut",
  newMeeting: "Nytt möte",
  meetingTitle: "Mötets titel",
  startsAt: "Starttid",
  durationMinutes: "Längd (minuter)",
  meetingCreated: "Mötet är bokat.",
  unavailable: "Den här delen av servern är inte tillgänglig än.",
};

type Texts = Record<keyof typeof sv, string>;

const en: Texts = {
  tagline: "Secure communication for coordinated hospital discharge",
  serverStatus: "Server status",
  healthy: "The server is up",
  unhealthy: "The server does not answer",
  checking: "Checking…",
  version: "Version",
  switchLang: "Svenska",
  switchLangLabel: "Switch language to Swedish",
  skipToContent: "Skip to content",
  mainNav: "Main menu",
  navInbox: "Inbox",
  navDirectory: "Directory",
  navMeetings: "Meetings",
  navAdmin: "Administration",
  loading: "Loading…",
  login: "Log in",
  loginIntro: "Log in with your account and your one-time code (TOTP) to read and send messages.",
  logout: "Log out",
  loggedInAs: "Logged in as",
  sessionExpired: "Your session has expired. Log in again to continue – unsent messages are kept.",
  loginAgain: "Log in again",
  offline: "No connection to the server. Messages you send are kept and sent when the connection is back.",
  reconnected: "Connected again – fetching what you missed.",
  dismiss: "Close",
  error: "Something went wrong",
  networkError: "The server could not be reached. Check the connection and try again.",
  notFoundPage: "This page does not exist.",
  forbiddenPage: "You do not have access to this page.",
  inboxTitle: "Inbox",
  unitSwitcher: "Unit",
  noUnits: "You are not a member of any unit. Ask an administrator to add you.",
  noConversations: "No conversations yet.",
  unread: "unread",
  unacknowledged: "unacknowledged",
  escalated: "Escalated",
  urgent: "Urgent",
  newConversation: "New conversation",
  notifyEnable: "Turn on desktop notifications",
  notifyOn: "Desktop notifications are on",
  notifyDenied: "Desktop notifications are blocked in the browser.",
  newMessageIn: "New message in",
  with: "With",
  lastActivity: "Last activity",
  conversation: "Conversation",
  messages: "Messages",
  messageLabel: "Message",
  compose: "Write a message",
  send: "Send",
  sending: "Sending…",
  queued: "Waiting to be sent",
  priority: "Priority",
  priorityNormal: "Normal",
  priorityUrgent: "Urgent",
  ackRequired: "Acknowledgement required",
  attach: "Attach file",
  attachments: "Attachments",
  uploading: "Uploading",
  uploadDone: "Uploaded",
  removeAttachment: "Remove attachment",
  acknowledge: "Acknowledge",
  acknowledgedBy: "Acknowledged by",
  claim: "I'll take this",
  claimedBy: "Taken by",
  release: "Give back to the unit",
  returnMisdirected: "Misdirected – return",
  returnConfirm: "Return the message to the sender as misdirected?",
  returned: "Returned (misdirected)",
  meetingInvitation: "Meeting invitation",
  delivered: "Delivered",
  read: "Read",
  acknowledged: "Acknowledged",
  pending: "Not delivered",
  deliveryTo: "Delivery state per recipient unit",
  edit: "Edit",
  save: "Save",
  cancel: "Cancel",
  retract: "Retract",
  retractConfirm: "Retract the message? The original is kept in the change record.",
  edited: "edited",
  retracted: "The message was retracted",
  typingOne: "is typing…",
  typingMany: "are typing…",
  you: "You",
  escalationNotice: "The message was escalated because nobody acknowledged it in time",
  subject: "Subject",
  caseRef: "Case reference (pseudonymous, never a personal identity number)",
  fromUnit: "From unit",
  toUnit: "To unit",
  create: "Create",
  startConversation: "Start conversation",
  startMeeting: "Book meeting",
  participants: "Participants",
  bodyTooLong: "The message is too long.",
  directoryTitle: "Contact directory",
  search: "Search units",
  searchHint: "Type a name, place or HSA id. Typos and å/ä/ö are handled.",
  filterMunicipality: "Municipality",
  filterType: "Unit type",
  filterOpenNow: "Reachable now",
  all: "All",
  results: "results",
  noResults: "No units match the search.",
  loadMore: "Show more",
  reachableNow: "Reachable now",
  notReachableNow: "Not reachable now",
  nextOpening: "Next opening",
  until: "until",
  closures: "Closures and notices",
  routeLabel: "Label",
  contactRoutes: "Contact routes",
  routePurpose: "Purpose",
  routeChannel: "Channel",
  routeValue: "Contact",
  routeHours: "Hours",
  address: "Address",
  organisation: "Organisation",
  hsaId: "HSA id",
  unitType: "Type",
  unitNotFound: "The unit does not exist.",
  editUnit: "Edit unit",
  unitDetails: "Unit details",
  type_ward: "Hospital ward",
  type_primary_care: "Primary-care centre",
  type_home_care: "Home care",
  type_nursing_home: "Nursing home",
  type_short_term_care: "Short-term care",
  type_municipal_health_care: "Municipal health care",
  type_social_services: "Social services",
  purpose_general: "General",
  purpose_discharge_planning: "Discharge planning",
  purpose_weekend_discharge: "Weekend discharge",
  purpose_on_call: "On call",
  purpose_switchboard: "Switchboard",
  purpose_medication: "Medication",
  purpose_other: "Other",
  channel_phone: "Phone",
  channel_secure_message: "Secure message",
  channel_video: "Video",
  channel_email: "Email",
  channel_fax: "Fax",
  channel_sip_text: "Text telephone",
  adminTitle: "Directory administration",
  adminUnits: "Units",
  adminImport: "Import",
  newUnit: "New unit",
  name: "Name",
  municipalityCode: "Municipality code",
  active: "Active",
  saved: "Saved.",
  conflict: "Someone else changed the unit while you were editing. Your changes are kept below; look at the latest version and save again.",
  reloadLatest: "Load the latest version",
  required: "Required field",
  invalidHsa: "An HSA id looks like SE1234567890-abc (at most 31 characters).",
  invalidMunicipality: "The municipality code has four digits.",
  formErrors: "The form has errors:",
  deleteUnit: "Delete unit",
  remove: "Remove",
  addRoute: "Add contact route",
  importTitle: "Import directory data",
  importFile: "File (CSV or JSON)",
  dryRun: "Dry run without saving",
  startImport: "Start import",
  importProgress: "Import progress",
  importDone: "The import is done.",
  importDryDone: "The dry run is done – nothing was saved.",
  importRejected: "Rejected rows – nothing was saved",
  line: "Line",
  reason: "Reason",
  rowsOk: "records accepted",
  record: "Record",
  importProcessing: "The file is uploaded – the server checks and saves the records…",
  unitsCreated: "new units",
  unitsUpdated: "changed units",
  meetingsTitle: "Meetings",
  upcomingMeetings: "Upcoming meetings",
  noMeetings: "No upcoming meetings.",
  joinMeeting: "Join",
  newMeeting: "New meeting",
  meetingTitle: "Meeting title",
  startsAt: "Starts at",
  durationMinutes: "Duration (minutes)",
  meetingCreated: "The meeting is booked.",
  unavailable: "This part of the server is not available yet.",
};

const texts: Record<Lang, Texts> = { sv, en };

export type TextKey = keyof typeof sv;

export const TIME_ZONE = "Europe/Stockholm";

function storedLang(): Lang {
  try {
    return localStorage.getItem("brygga.lang") === "en" ? "en" : "sv";
  } catch {
    return "sv";
  }
}

export const langStore = createStore<Lang>(storedLang());

export function initialLang(): Lang {
  return storedLang();
}

export function setLang(lang: Lang): void {
  try {
    localStorage.setItem("brygga.lang", lang);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  document.documentElement.lang = lang;
  langStore.set(lang);
}

export function translate(lang: Lang, key: TextKey): string {
  return texts[lang][key];
}

/** Text for a key that may not exist (unit types, purposes from the server): falls back to the raw value. */
export function translateMaybe(lang: Lang, key: string, fallback: string): string {
  const table = texts[lang] as Record<string, string>;
  return table[key] ?? fallback;
}

export function t(key: TextKey): string {
  return texts[langStore.get()][key];
}

export function useLang(): Lang {
  return useStore(langStore);
}

/** Hook: the translate function for the current language (re-renders on switch). */
export function useT(): (key: TextKey) => string {
  const lang = useLang();
  return (key: TextKey) => texts[lang][key];
}

const locales: Record<Lang, string> = { sv: "sv-SE", en: "en-GB" };

export function formatDateTime(iso: string | null | undefined, lang: Lang = langStore.get()): string {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(locales[lang], {
    timeZone: TIME_ZONE,
    dateStyle: "medium",
    timeStyle: "short",
  }).format(date);
}

export function formatTime(iso: string | null | undefined, lang: Lang = langStore.get()): string {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const sameDay =
    new Intl.DateTimeFormat("sv-SE", { timeZone: TIME_ZONE, dateStyle: "short" }).format(date) ===
    new Intl.DateTimeFormat("sv-SE", { timeZone: TIME_ZONE, dateStyle: "short" }).format(new Date());
  return sameDay
    ? new Intl.DateTimeFormat(locales[lang], { timeZone: TIME_ZONE, timeStyle: "short" }).format(date)
    : formatDateTime(iso, lang);
}

export function formatBytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(0)} kB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}
