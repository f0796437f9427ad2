// Swedish first, English second. Keys are English identifiers; texts live here only.
export type Lang = "sv" | "en";

const texts = {
  sv: {
    tagline: "Säker kommunikation för samordnad utskrivning",
    serverStatus: "Serverstatus",
    healthy: "Servern är i drift",
    unhealthy: "Servern svarar inte",
    checking: "Kontrollerar…",
    version: "Version",
    switchLang: "English",
  },
  en: {
    tagline: "Secure communication for coordinated hospital discharge",
    serverStatus: "Server status",
    healthy: "The server is up",
    unhealthy: "The server does not answer",
    checking: "Checking…",
    version: "Version",
    switchLang: "Svenska",
  },
} as const;

export type TextKey = keyof (typeof texts)["sv"];

export function initialLang(): Lang {
  const stored = localStorage.getItem("brygga.lang");
  return stored === "en" ? "en" : "sv";
}

export function translate(lang: Lang, key: TextKey): string {
  return texts[lang][key];
}
