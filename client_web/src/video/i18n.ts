// Meeting page texts: Swedish first, English second.
export type Lang = "sv" | "en";

const sv = {
  title: "Videomöte",
  switchLang: "English",
  guestIntro: "Du har bjudits in till ett videomöte. Skriv ditt namn och engångskoden du fått av värden.",
  yourName: "Ditt namn",
  oneTimeCode: "Engångskod",
  toWaitingRoom: "Gå till väntrummet",
  join: "Anslut till mötet",
  camera: "Kamera",
  microphone: "Mikrofon",
  noCamera: "Ingen kamera",
  preview: "Förhandsvisning",
  audioOnlyJoin: "Endast ljud (låg bandbredd)",
  waiting: "Väntar på att värden släpper in dig …",
  waitingHelp: "Du ser och hörs inte av de andra förrän du släppts in.",
  muteMic: "Stäng av mikrofonen",
  unmuteMic: "Slå på mikrofonen",
  cameraOff: "Stäng av kameran",
  cameraOn: "Slå på kameran",
  shareScreen: "Dela skärm",
  stopShare: "Sluta dela skärm",
  audioOnly: "Endast ljud",
  videoOn: "Visa video igen",
  leave: "Lämna mötet",
  endMeeting: "Avsluta mötet",
  confirmEnd: "Avsluta mötet för alla deltagare?",
  yesEnd: "Ja, avsluta för alla",
  cancel: "Avbryt",
  lobby: "Väntrum",
  lobbyEmpty: "Ingen väntar.",
  admit: "Släpp in",
  deny: "Neka",
  remove: "Ta bort",
  you: "Du",
  host: "Värd",
  guest: "Gäst",
  muted: "Mikrofon av",
  ended: "Mötet är avslutat.",
  removed: "Du har tagits bort från mötet.",
  left: "Du har lämnat mötet.",
  mediaFailed: "Ljud- och bildförbindelsen bröts. Anslut igen.",
  rejoin: "Anslut igen",
  muteRequest: "Värden har bett dig stänga av mikrofon eller kamera.",
  noRecording: "Mötet spelas aldrig in.",
  participants: "Deltagare",
  error: "Något gick fel",
  noMeeting: "Länken saknar möte. Öppna mötet från Brygga eller via inbjudningslänken.",
  screen: "Delar skärm",
  chat: "Chatt",
  chatHelp: "Sparas i ärendets konversation i Brygga. Gäster ser inte chatten.",
  chatEmpty: "Inga meddelanden än.",
  chatMessage: "Meddelande",
  chatSend: "Skicka",
  chatSending: "Skickar …",
  chatTimeout: "Meddelandet kunde inte skickas. Kontrollera anslutningen och försök igen.",
  identity_token: "Token (test)",
  identity_session: "Inloggad",
  identity_siths: "SITHS-kort",
  identity_bankid: "BankID",
  identity_password: "Lösenord",
  identity_password_otp: "Lösenord + engångskod",
  identity_eid_loa3: "E-legitimation (tillitsnivå 3)",
  identity_eid_loa4: "E-legitimation (tillitsnivå 4)",
  identity_freja: "Freja eID",
  identity_other: "Annan inloggning",
  identity_guest_code: "Gäst: länk och engångskod",
  lobbyAlertMany: "{n} personer väntar i väntrummet",
  lobbyAlertOne: "1 person väntar i väntrummet",
  callRegion: "Mötet",
  micLevel: "Mikrofonnivå (säg något)",
  defaultDevice: "Förvald (datorns val)",
  cameraChecking: "Kontrollerar kameran …",
  cameraWorks: "Kameran fungerar",
  cameraNoPicture: "Ingen bild från kameran. Kontrollera att den är ansluten och inte används av ett annat program, eller välj en annan kamera.",
  cameraDenied: "Webbläsaren får inte använda kameran eller mikrofonen. Tillåt dem via ikonen vid adressfältet och ladda om sidan.",
  cameraCheckOff: "Kameran är av (endast ljud)",
  raiseHand: "Räck upp handen",
  lowerHand: "Ta ner handen",
  handRaised: "✋ Vill säga något",
  guestCodeWrong: "Koden stämmer inte. Kontrollera engångskoden du fått av värden och försök igen.",
  guestLinkGone: "Länken går inte att använda längre (den har använts, gått ut eller dragits tillbaka). Be värden om en ny länk.",
  guestLinkInvalid: "Länken är inte giltig. Kontrollera att du öppnat hela länken, eller be värden om en ny.",
  guestTooManyTries: "För många försök. Vänta en minut och försök igen.",
} as const;

export type TextKey = keyof typeof sv;

const en: Record<TextKey, string> = {
  title: "Video meeting",
  switchLang: "Svenska",
  guestIntro: "You have been invited to a video meeting. Enter your name and the one-time code the host gave you.",
  yourName: "Your name",
  oneTimeCode: "One-time code",
  toWaitingRoom: "Go to the waiting room",
  join: "Join the meeting",
  camera: "Camera",
  microphone: "Microphone",
  noCamera: "No camera",
  preview: "Preview",
  audioOnlyJoin: "Audio only (low bandwidth)",
  waiting: "Waiting for the host to let you in …",
  waitingHelp: "The others cannot see or hear you until you are let in.",
  muteMic: "Mute microphone",
  unmuteMic: "Unmute microphone",
  cameraOff: "Turn camera off",
  cameraOn: "Turn camera on",
  shareScreen: "Share screen",
  stopShare: "Stop sharing",
  audioOnly: "Audio only",
  videoOn: "Show video again",
  leave: "Leave the meeting",
  endMeeting: "End the meeting",
  confirmEnd: "End the meeting for everyone?",
  yesEnd: "Yes, end for everyone",
  cancel: "Cancel",
  lobby: "Waiting room",
  lobbyEmpty: "Nobody is waiting.",
  admit: "Let in",
  deny: "Turn away",
  remove: "Remove",
  you: "You",
  host: "Host",
  guest: "Guest",
  muted: "Muted",
  ended: "The meeting has ended.",
  removed: "You were removed from the meeting.",
  left: "You left the meeting.",
  mediaFailed: "The audio/video connection was lost. Join again.",
  rejoin: "Join again",
  muteRequest: "The host asked you to turn off your microphone or camera.",
  noRecording: "This meeting is never recorded.",
  participants: "Participants",
  error: "Something went wrong",
  noMeeting: "The link has no meeting. Open the meeting from Brygga or via the invitation link.",
  screen: "Sharing screen",
  chat: "Chat",
  chatHelp: "Kept in the case's conversation in Brygga. Guests do not see the chat.",
  chatEmpty: "No messages yet.",
  chatMessage: "Message",
  chatSend: "Send",
  chatSending: "Sending …",
  chatTimeout: "The message could not be sent. Check the connection and try again.",
  identity_token: "Token (test)",
  identity_session: "Logged in",
  identity_siths: "SITHS card",
  identity_bankid: "BankID",
  identity_password: "Password",
  identity_password_otp: "Password + one-time code",
  identity_eid_loa3: "e-ID (assurance level 3)",
  identity_eid_loa4: "e-ID (assurance level 4)",
  identity_freja: "Freja eID",
  identity_other: "Other login",
  identity_guest_code: "Guest: link and one-time code",
  lobbyAlertMany: "{n} people are waiting in the waiting room",
  lobbyAlertOne: "1 person is waiting in the waiting room",
  callRegion: "The meeting",
  micLevel: "Microphone level (say something)",
  defaultDevice: "Default (the computer's choice)",
  cameraChecking: "Checking the camera …",
  cameraWorks: "The camera works",
  cameraNoPicture: "No picture from the camera. Check that it is connected and not used by another program, or choose another camera.",
  cameraDenied: "The browser may not use the camera or microphone. Allow them with the icon by the address bar and reload the page.",
  cameraCheckOff: "The camera is off (audio only)",
  raiseHand: "Raise hand",
  lowerHand: "Lower hand",
  handRaised: "✋ Wants to speak",
  guestCodeWrong: "The code is not right. Check the one-time code the host gave you and try again.",
  guestLinkGone: "The link cannot be used any more (it was used, has expired or was withdrawn). Ask the host for a new link.",
  guestLinkInvalid: "The link is not valid. Check that you opened the whole link, or ask the host for a new one.",
  guestTooManyTries: "Too many attempts. Wait a minute and try again.",
};

/** "torsdag 3 dec. kl. 09:00" / "Thursday 3 Dec, 09:00" in Stockholm time (as in the main client). */
export function formatWhen(lang: Lang, iso: string): string {
  const date = new Date(iso);
  const locale = lang === "sv" ? "sv-SE" : "en-GB";
  const zone = { timeZone: "Europe/Stockholm" } as const;
  const day = new Intl.DateTimeFormat(locale, { ...zone, weekday: "long", day: "numeric", month: "short" }).format(date);
  const time = new Intl.DateTimeFormat(locale, { ...zone, hour: "2-digit", minute: "2-digit" }).format(date);
  return lang === "sv" ? `${day} kl. ${time}` : `${day}, ${time}`;
}

/** What a guest reads when redeeming a link fails: by the server's problem code, never its English text. */
export function redeemProblem(lang: Lang, code: string | undefined): string {
  const key: TextKey =
    code === "guest_code_invalid"
      ? "guestCodeWrong"
      : code === "guest_link_invalid"
        ? "guestLinkInvalid"
        : code === "meeting_ended"
          ? "ended"
          : code === "rate_limited"
            ? "guestTooManyTries"
            : code?.startsWith("guest_link_")
              ? "guestLinkGone"
              : "error";
  return translate(lang, key);
}

export function initialLang(): Lang {
  return localStorage.getItem("brygga.lang") === "en" ? "en" : "sv";
}

export function translate(lang: Lang, key: TextKey): string {
  return lang === "sv" ? sv[key] : en[key];
}

export function identityLabel(lang: Lang, method: string): string {
  const key = `identity_${method}` as TextKey;
  return translate(lang, key in sv ? key : "identity_other"); // never a raw method name or URN
}
