import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { initialLang, translate, type Lang, type TextKey } from "./i18n";
import "./style.css";

type Health = { status: "ok"; version: string } | { status: "down" } | { status: "checking" };

function App() {
  const [lang, setLang] = useState<Lang>(initialLang());
  const [health, setHealth] = useState<Health>({ status: "checking" });
  const t = (key: TextKey) => translate(lang, key);

  useEffect(() => {
    document.documentElement.lang = lang;
    localStorage.setItem("brygga.lang", lang);
  }, [lang]);

  useEffect(() => {
    fetch("/healthz")
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(String(response.status)))))
      .then((body: { version: string }) => setHealth({ status: "ok", version: body.version }))
      .catch(() => setHealth({ status: "down" }));
  }, []);

  return (
    <main>
      <header>
        <h1>Brygga</h1>
        <button type="button" onClick={() => setLang(lang === "sv" ? "en" : "sv")}>
          {t("switchLang")}
        </button>
      </header>
      <p class="tagline">{t("tagline")}</p>
      <section aria-labelledby="status-heading">
        <h2 id="status-heading">{t("serverStatus")}</h2>
        <p role="status" data-testid="health" class={`health health-${health.status}`}>
          {health.status === "checking" ? t("checking") : health.status === "ok" ? t("healthy") : t("unhealthy")}
        </p>
        {health.status === "ok" && (
          <p>
            {t("version")}: <span data-testid="version">{health.version}</span>
          </p>
        )}
      </section>
    </main>
  );
}

render(<App />, document.getElementById("app")!);
