import { useEffect, useState } from "preact/hooks";
import { PageHeading } from "../components";
import { useT } from "../i18n";
import { loginUrl } from "../session";

type Health = { status: "ok"; version: string } | { status: "down" } | { status: "checking" };

/** Shown when nobody is logged in: the way into the OIDC login, plus the server's health. */
export function LoginView() {
  const t = useT();
  const [health, setHealth] = useState<Health>({ status: "checking" });

  useEffect(() => {
    fetch("/healthz")
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(String(response.status)))))
      .then((body: { version: string }) => setHealth({ status: "ok", version: body.version }))
      .catch(() => setHealth({ status: "down" }));
  }, []);

  return (
    <div class="login-page">
      <PageHeading>Brygga</PageHeading>
      <p class="tagline">{t("tagline")}</p>
      <section class="card" aria-labelledby="login-heading">
        <h2 id="login-heading">{t("login")}</h2>
        <p>{t("loginIntro")}</p>
        <a class="button button-primary" href={loginUrl()} data-testid="login-link">
          {t("login")}
        </a>
      </section>
      <section aria-labelledby="status-heading" class="status-section">
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
    </div>
  );
}
