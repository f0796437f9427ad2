import { render, type ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { sessionExpired } from "./api";
import { ErrorNote, Loading } from "./components";
import { formatTime, plural, setLang, useLang, useT } from "./i18n";
import { startNotifications } from "./notify";
import { connectionStore, escalationStore, unreadStore } from "./realtime";
import { startRealtime } from "./realtime";
import { useRoute } from "./router";
import { isAdmin, loadSession, loginUrl, logout, sessionStore } from "./session";
import { useStore } from "./store";
import { ConversationView } from "./views/Conversation";
import { DirectoryView, UnitPage } from "./views/Directory";
import { InboxView } from "./views/Inbox";
import { LoginView } from "./views/Login";
import { MeetingView, MeetingsView } from "./views/Meetings";
import { useDT } from "./views/discharge_texts";
import "./style.css";

/** A view loaded on first use (its own chunk): administration and discharge planning are not everyone's
 * daily pages, so the inbox loads without them. */
function lazyView<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let loaded: ComponentType<P> | null = null;
  return function LazyView(props: P) {
    const [view, setView] = useState<{ component: ComponentType<P> | null; error: unknown }>({ component: loaded, error: null });
    const [attempt, setAttempt] = useState(0);
    useEffect(() => {
      if (view.component) return;
      load().then(
        (component) => {
          loaded = component;
          setView({ component, error: null });
        },
        (error: unknown) => setView({ component: null, error }),
      );
    }, [attempt]);
    if (view.error) return <ErrorNote error={view.error} retry={() => setAttempt((n) => n + 1)} />;
    const View = view.component;
    return View ? <View {...props} /> : <Loading />;
  };
}

const AdminHome = lazyView(() => import("./views/Admin").then((m) => m.AdminHome));
const AdminImport = lazyView(() => import("./views/Admin").then((m) => m.AdminImport));
const AdminUnitEditor = lazyView(() => import("./views/Admin").then((m) => m.AdminUnitEditor));
const CasesView = lazyView(() => import("./views/Discharge").then((m) => m.CasesView));
const CaseView = lazyView(() => import("./views/Discharge").then((m) => m.CaseView));
const StatisticsView = lazyView(() => import("./views/Discharge").then((m) => m.StatisticsView));
const DeviationsView = lazyView(() => import("./views/Discharge").then((m) => m.DeviationsView));
const SearchView = lazyView(() => import("./views/Search").then((m) => m.SearchView));

function LangSwitch() {
  const lang = useLang();
  const t = useT();
  return (
    <button type="button" class="lang-switch" lang={lang === "sv" ? "en" : "sv"} onClick={() => setLang(lang === "sv" ? "en" : "sv")}>
      {t("switchLang")}
    </button>
  );
}

function Banners() {
  const t = useT();
  const expired = useStore(sessionExpired);
  const connection = useStore(connectionStore);
  const escalations = useStore(escalationStore);
  const [wasOffline, setWasOffline] = useState(false);
  const [showBack, setShowBack] = useState(false);
  useEffect(() => {
    if (connection === "offline") setWasOffline(true);
    if (connection === "online" && wasOffline) {
      setShowBack(true);
      setWasOffline(false);
      const timer = window.setTimeout(() => setShowBack(false), 4_000);
      return () => window.clearTimeout(timer);
    }
    return undefined;
  }, [connection]);
  return (
    <div class="banners">
      {expired && (
        <div class="banner banner-error" role="alert" data-testid="session-expired">
          <span>{t("sessionExpired")}</span> <a href={loginUrl()} class="button button-primary">{t("loginAgain")}</a>
        </div>
      )}
      {!expired && (connection === "offline" || connection === "refused") && (
        <div class="banner banner-warning" role="status" data-testid="offline-banner">
          {t("offline")}
        </div>
      )}
      {escalations.length > 0 && (
        <div class="banner banner-escalation" role="alert" data-testid="escalation-banner">
          <span>{t("escalationNotice")}:</span>
          {escalations.slice(-3).map((item) => (
            <a key={`${item.message_id}-${item.level}`} href={`#/conversations/${item.conversation_id}`} class="banner-link">
              {t("conversation")} ({formatTime(item.at)})
            </a>
          ))}
          <button type="button" onClick={() => escalationStore.set([])}>
            {t("dismiss")}
          </button>
        </div>
      )}
      {showBack && connection === "online" && (
        <div class="banner banner-info" role="status">
          {t("reconnected")}
        </div>
      )}
    </div>
  );
}

function Nav() {
  const t = useT();
  const lang = useLang();
  const unread = Object.values(useStore(unreadStore)).reduce((sum, n) => sum + n, 0);
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Brygga` : "Brygga";
  }, [unread]);
  const dt = useDT();
  const route = useRoute();
  const state = useStore(sessionStore);
  const me = state.status === "ready" ? state.me : null;
  const section =
    route.name === "conversation" ? "inbox" : route.name === "unit" ? "directory" : route.name === "case" ? "cases" : route.name === "meeting" ? "meetings" : route.name.startsWith("admin") ? "admin" : route.name;
  const links: [string, string, string][] = [
    ["inbox", "#/inbox", t("navInbox")],
    ["directory", "#/directory", t("navDirectory")],
    ["meetings", "#/meetings", t("navMeetings")],
    ["search", "#/search", t("navSearch")],
    ["cases", "#/cases", dt("navCases")],
    ["statistics", "#/statistics", dt("navStatistics")],
    ["deviations", "#/deviations", dt("navDeviations")],
  ];
  if (isAdmin(me)) links.push(["admin", "#/admin", t("navAdmin")]);
  return (
    <nav aria-label={t("mainNav")} class="main-nav">
      <ul>
        {links.map(([name, href, label]) => (
          <li key={name}>
            <a href={href} aria-current={section === name ? "page" : undefined}>
              {label}
              {name === "inbox" && unread > 0 && <span class="badge badge-unread nav-count">{plural(lang, unread, "unread")}</span>}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}

function Page() {
  const route = useRoute();
  const t = useT();
  switch (route.name) {
    case "inbox":
      return <InboxView />;
    case "conversation":
      return <ConversationView key={route.id} id={route.id} />;
    case "directory":
      return <DirectoryView />;
    case "unit":
      return <UnitPage key={route.id} id={route.id} />;
    case "admin":
      return <AdminHome />;
    case "adminUnit":
      return <AdminUnitEditor key={route.id ?? "new"} id={route.id} />;
    case "adminImport":
      return <AdminImport />;
    case "meetings":
      return <MeetingsView />;
    case "meeting":
      return <MeetingView key={route.id} id={route.id} />;
    case "cases":
      return <CasesView />;
    case "case":
      return <CaseView key={route.id} id={route.id} />;
    case "statistics":
      return <StatisticsView />;
    case "deviations":
      return <DeviationsView />;
    case "search":
      return <SearchView key={location.hash} />; // a link to other filters starts a new search
    default:
      return <h1 tabIndex={-1}>{t("notFoundPage")}</h1>;
  }
}

function App() {
  const t = useT();
  const lang = useLang();
  const state = useStore(sessionStore);

  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);

  useEffect(() => {
    loadSession().catch(() => sessionStore.set({ status: "anonymous" }));
  }, []);

  useEffect(() => {
    if (state.status === "ready") {
      void startRealtime(state.me.user_id);
      startNotifications();
    }
  }, [state.status]);

  if (state.status === "loading") {
    return (
      <main id="main">
        <Loading />
      </main>
    );
  }
  if (state.status === "anonymous") {
    return (
      <>
        <header class="app-header">
          <a href="#/inbox" class="brand">Brygga</a>
          <LangSwitch />
        </header>
        <main id="main">
          <LoginView />
        </main>
      </>
    );
  }
  return (
    <>
      <a href="#main" class="skip-link" onClick={(event) => { event.preventDefault(); document.getElementById("main")?.focus(); }}>
        {t("skipToContent")}
      </a>
      <header class="app-header">
        <a href="#/inbox" class="brand">Brygga</a>
        <Nav />
        <div class="user-box">
          <span class="user-name">
            <span class="visually-hidden">{t("loggedInAs")} </span>
            {state.me.display_name}
          </span>
          <LangSwitch />
          <button type="button" onClick={() => void logout()}>
            {t("logout")}
          </button>
        </div>
      </header>
      <Banners />
      <main id="main" tabIndex={-1}>
        <Page />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
