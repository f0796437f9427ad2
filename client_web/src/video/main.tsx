// The meeting page (/meeting). Entered as /meeting#meeting=<id> (staff; session cookie, or a bearer
// token in the fragment for tests/dev: #meeting=<id>&token=<token>) or /meeting#guest=<secret>
// (guest link). The fragment is never sent to the server and is cleared from the address bar.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { MeetingCall, type Auth, type ChatMessage, type Participant, type RemoteVideoStats } from "./call";
import { formatWhen, identityLabel, initialLang, redeemProblem, translate, type Lang, type TextKey } from "./i18n";
import "../style.css"; // the design system of the rest of Brygga
import "./meeting.css";

type Entry = { meetingId: string | null; token: string | null; guestSecret: string | null };

function readFragment(): Entry {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const entry = { meetingId: params.get("meeting"), token: params.get("token"), guestSecret: params.get("guest") };
  // Secrets leave the address bar (and history) at once; only the meeting id stays.
  const keep = entry.meetingId ? `#meeting=${entry.meetingId}` : "";
  history.replaceState(null, "", `${location.pathname}${keep}`);
  return entry;
}

const ENTRY = readFragment();

type Phase = "setup" | "connecting" | "waiting" | "joined" | "ended" | "removed" | "failed" | "left";

function App() {
  const [lang, setLang] = useState<Lang>(initialLang());
  const t = (key: TextKey) => translate(lang, key);
  const [phase, setPhase] = useState<Phase>("setup");
  const [error, setError] = useState<string | null>(null);
  const [meetingId, setMeetingId] = useState<string | null>(ENTRY.meetingId);
  const [auth, setAuth] = useState<Auth>(ENTRY.token ? { token: ENTRY.token } : {});
  const [title, setTitle] = useState<string>("");
  const [startsAt, setStartsAt] = useState<string | null>(null);
  const callRegion = useRef<HTMLElement>(null);
  const [local, setLocal] = useState<MediaStream | null>(null);
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const [cameraId, setCameraId] = useState<string>("");
  const [micId, setMicId] = useState<string>("");
  const [audioOnly, setAudioOnly] = useState(false);
  const [mediaProblem, setMediaProblem] = useState<"denied" | "failed" | null>(null);
  const [call, setCall] = useState<MeetingCall | null>(null);
  const [participants, setParticipants] = useState<Participant[]>([]);
  const [waiting, setWaiting] = useState<Participant[]>([]);
  const [streams, setStreams] = useState<Map<string, MediaStream>>(new Map());
  const [stats, setStats] = useState<Map<string, RemoteVideoStats>>(new Map());
  const [micOn, setMicOn] = useState(true);
  const [camOn, setCamOn] = useState(true);
  const [sharing, setSharing] = useState(false);
  const [confirmEnd, setConfirmEnd] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [route, setRoute] = useState("");
  const [chat, setChat] = useState<ChatMessage[]>([]);
  const isGuest = ENTRY.guestSecret !== null;

  useEffect(() => {
    document.documentElement.lang = lang;
    localStorage.setItem("brygga.lang", lang);
    document.title = `Brygga – ${t("title")}`;
  }, [lang]);

  // Staff know the meeting from its id: its title and time go in the heading (guests get them on redeeming).
  useEffect(() => {
    if (!ENTRY.meetingId || isGuest) return;
    const headers: Record<string, string> = ENTRY.token ? { Authorization: `Bearer ${ENTRY.token}` } : {};
    fetch(`/api/v1/meetings/${encodeURIComponent(ENTRY.meetingId)}`, { headers })
      .then((response) => (response.ok ? response.json() : null))
      .then((meeting: { title: string; starts_at: string } | null) => {
        if (!meeting) return;
        setTitle(meeting.title);
        setStartsAt(meeting.starts_at);
      })
      .catch(() => undefined);
  }, []);

  // After joining, focus moves to the call, so keyboard and screen-reader users land in it.
  useEffect(() => {
    if (phase === "joined") callRegion.current?.focus();
  }, [phase]);

  // A host hears a chime and sees an alert whenever someone new starts waiting.
  const waitingBefore = useRef(0);
  useEffect(() => {
    if (call?.host && waiting.length > waitingBefore.current) chime();
    waitingBefore.current = waiting.length;
  }, [waiting.length]);

  // Camera/microphone preview with device choice.
  useEffect(() => {
    if (phase !== "setup") return;
    let cancelled = false;
    const constraints: MediaStreamConstraints = {
      audio: micId ? { deviceId: { exact: micId } } : true,
      video: audioOnly
        ? false
        : { ...(cameraId ? { deviceId: { exact: cameraId } } : {}), width: 640, height: 360, frameRate: 15 },
    };
    navigator.mediaDevices
      .getUserMedia(constraints)
      .then(async (media) => {
        if (cancelled) return media.getTracks().forEach((track) => track.stop());
        setLocal((previous) => {
          previous?.getTracks().forEach((track) => track.stop()); // release the old device
          return media;
        });
        setMediaProblem(null);
        setDevices(await navigator.mediaDevices.enumerateDevices());
      })
      .catch((exc: Error) => {
        const denied = exc.name === "NotAllowedError" || exc.name === "SecurityError";
        setMediaProblem(denied ? "denied" : "failed"); // the camera check says what it means and what to do
        if (!denied && exc.name !== "NotFoundError" && exc.name !== "NotReadableError") setError(exc.message);
      });
    return () => {
      cancelled = true;
    };
  }, [cameraId, micId, audioOnly, phase]);

  // The page's own view of what it decodes: a quality hint per tile (and what the e2e test reads).
  useEffect(() => {
    if (!call || phase !== "joined") return;
    const timer = setInterval(() => {
      void call.remoteVideoStats().then(setStats);
      void call.route().then(setRoute);
    }, 1000);
    return () => clearInterval(timer);
  }, [call, phase]);

  async function start(event: Event) {
    event.preventDefault();
    setError(null);
    let id = meetingId;
    let credentials = auth;
    try {
      if (isGuest && !("guest_token" in credentials)) {
        const form = new FormData(event.target as HTMLFormElement);
        const response = await fetch("/api/v1/guest-links/redeem", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ link: ENTRY.guestSecret, name: form.get("name"), code: form.get("code") }),
        });
        const body = await response.json();
        if (!response.ok) throw new Error(redeemProblem(lang, body.code));
        credentials = { guest_token: body.guest_token };
        id = body.meeting_id;
        setTitle(body.title);
        setStartsAt(body.starts_at);
        setAuth(credentials);
        setMeetingId(id);
      }
      if (!id || !local) throw new Error(t("noMeeting"));
      setPhase("connecting");
      const meetingCall = new MeetingCall(id, credentials, local, {
        onState: (state) => setPhase(state),
        onParticipants: setParticipants,
        onLobby: setWaiting,
        onStreams: setStreams,
        onChatMessage: (message) => setChat((messages) => withMessage(messages, message)),
        onMuteRequest: (request) => {
          if (request.audio === false) void meetingCall.setMicrophone(false).then(() => setMicOn(false));
          if (request.video === false) void meetingCall.setCamera(false).then(() => setCamOn(false));
          setNotice(t("muteRequest"));
        },
      });
      setCall(meetingCall);
      await meetingCall.join();
      if (meetingCall.chatConversationId) void loadChat(meetingCall.chatConversationId, credentials);
      if (audioOnly) await meetingCall.setAudioOnly(true);
    } catch (exc) {
      setPhase("setup");
      setError((exc as Error).message);
    }
  }

  /** The latest messages of the linked conversation (the REST read is access-logged like any other). */
  async function loadChat(conversationId: string, credentials: Auth) {
    const headers: Record<string, string> = "token" in credentials ? { Authorization: `Bearer ${credentials.token}` } : {};
    const response = await fetch(`/api/v1/conversations/${conversationId}/messages?limit=30`, { headers });
    if (!response.ok) return;
    const body = (await response.json()) as { items: ChatMessage[] };
    setChat((messages) => body.items.reduce(withMessage, messages));
  }

  async function toggleShare() {
    if (!call || !local) return;
    if (sharing) {
      await call.replaceVideo(local.getVideoTracks()[0] ?? null, false);
      setSharing(false);
      return;
    }
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true }).catch(() => null);
    const track = display?.getVideoTracks()[0];
    if (!track) return;
    track.onended = () => void call.replaceVideo(local.getVideoTracks()[0] ?? null, false).then(() => setSharing(false));
    await call.replaceVideo(track, true);
    setSharing(true);
  }

  const me = participants.find((p) => p.participant_id === call?.participantId);
  const others = participants.filter((p) => p.participant_id !== call?.participantId);

  return (
    <main class="meeting">
      <header>
        <div>
          <h1>
            {t("title")}
            {title ? `: ${title}` : ""}
          </h1>
          {startsAt && (
            <p class="when" data-testid="meeting-when">
              <time dateTime={startsAt}>{formatWhen(lang, startsAt)}</time>
            </p>
          )}
        </div>
        <button type="button" onClick={() => setLang(lang === "sv" ? "en" : "sv")}>
          {t("switchLang")}
        </button>
      </header>
      <p class="no-recording">{t("noRecording")}</p>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {notice && (
        <p role="status" class="notice">
          {notice}
        </p>
      )}

      {(phase === "setup" || phase === "connecting") && (
        <form class="setup" onSubmit={start}>
          {isGuest && <p>{t("guestIntro")}</p>}
          {isGuest && (
            <>
              <label>
                {t("yourName")}
                <input name="name" required maxLength={100} autoComplete="name" />
              </label>
              <label>
                {t("oneTimeCode")}
                <input name="code" required inputMode="numeric" pattern="[0-9]{6}" autoComplete="one-time-code" />
              </label>
            </>
          )}
          <figure>
            <Video stream={local} muted label={t("preview")} />
          </figure>
          <label>
            {t("camera")}
            <select value={cameraId} onChange={(e) => setCameraId((e.target as HTMLSelectElement).value)}>
              <option value="">{t("defaultDevice")}</option>
              {devices
                .filter((d) => d.kind === "videoinput")
                .map((d, i) => (
                  <option value={d.deviceId}>{d.label || `${t("camera")} ${i + 1}`}</option>
                ))}
            </select>
          </label>
          <label>
            {t("microphone")}
            <select value={micId} onChange={(e) => setMicId((e.target as HTMLSelectElement).value)}>
              <option value="">{t("defaultDevice")}</option>
              {devices
                .filter((d) => d.kind === "audioinput")
                .map((d, i) => (
                  <option value={d.deviceId}>{d.label || `${t("microphone")} ${i + 1}`}</option>
                ))}
            </select>
          </label>
          <label class="inline">
            <input type="checkbox" checked={audioOnly} onChange={() => setAudioOnly(!audioOnly)} />
            {t("audioOnlyJoin")}
          </label>
          <CameraCheck stream={local} audioOnly={audioOnly} problem={mediaProblem} t={t} />
          <MicLevel stream={local} label={t("micLevel")} />
          <button type="submit" class="button-primary" disabled={!local || phase === "connecting"}>
            {isGuest ? t("toWaitingRoom") : t("join")}
          </button>
        </form>
      )}

      {phase === "waiting" && (
        <section data-testid="waiting" class="waiting" aria-live="polite">
          <p>{t("waiting")}</p>
          <p>{t("waitingHelp")}</p>
        </section>
      )}

      {phase === "joined" && call && (
        <section
          ref={callRegion}
          tabIndex={-1}
          aria-label={t("callRegion")}
          data-testid="call"
          data-participant-id={call.participantId}
          data-ice-route={route}
          class="call"
        >
          {call.host && waiting.length > 0 && (
            <p role="alert" class="lobby-alert" data-testid="lobby-alert">
              {waiting.length === 1 ? t("lobbyAlertOne") : t("lobbyAlertMany").replace("{n}", String(waiting.length))}
            </p>
          )}
          <div class="call-layout">
            <div class="call-main">
              <div class="grid">
                <Tile
                  lang={lang}
                  participant={me}
                  stream={local}
                  self
                  label={t("you")}
                  host={false}
                  onRemove={null}
                />
                {others.map((p) => (
                  <Tile
                    key={p.participant_id}
                    lang={lang}
                    participant={p}
                    stream={streams.get(p.participant_id) ?? null}
                    stats={stats.get(p.participant_id)}
                    host={call.host}
                    onRemove={() => void call.remove(p.participant_id)}
                  />
                ))}
              </div>
              <div class="controls" role="toolbar">
                <button type="button" onClick={() => void call.setMicrophone(!micOn).then(() => setMicOn(!micOn))}>
                  {micOn ? t("muteMic") : t("unmuteMic")}
                </button>
                <button type="button" onClick={() => void call.setCamera(!camOn).then(() => setCamOn(!camOn))}>
                  {camOn ? t("cameraOff") : t("cameraOn")}
                </button>
                <button type="button" aria-pressed={!!me?.hand} onClick={() => void call.setHand(!me?.hand)}>
              {me?.hand ? t("lowerHand") : t("raiseHand")}
            </button>
            <button type="button" onClick={() => void toggleShare()}>
                  {sharing ? t("stopShare") : t("shareScreen")}
                </button>
                <button
                  type="button"
                  onClick={() => void call.setAudioOnly(!audioOnly).then(() => setAudioOnly(!audioOnly))}
                >
                  {audioOnly ? t("videoOn") : t("audioOnly")}
                </button>
                <button type="button" onClick={() => void call.leave()}>
                  {t("leave")}
                </button>
                {call.host && (
                  <button type="button" class="danger" onClick={() => setConfirmEnd(true)}>
                    {t("endMeeting")}
                  </button>
                )}
              </div>
            </div>
            {call.host && (
              <aside data-testid="lobby" class="lobby" aria-label={t("lobby")}>
                <h2>
                  {t("lobby")} ({waiting.length})
                </h2>
                {waiting.length === 0 && <p>{t("lobbyEmpty")}</p>}
                <ul>
                  {waiting.map((p) => (
                    <li data-testid="lobby-entry" key={p.participant_id}>
                      <span>{p.name}</span> <small>{[p.unit, p.organisation].filter(Boolean).join(", ") || (p.guest ? t("guest") : "")}</small>{" "}
                      <small>{identityLabel(lang, p.identity_method)}</small>
                      <button type="button" class="button-primary" aria-label={`${t("admit")}: ${p.name}`} onClick={() => void call.admit(p.participant_id)}>
                        {t("admit")}
                      </button>
                      <button type="button" aria-label={`${t("deny")}: ${p.name}`} onClick={() => void call.remove(p.participant_id)}>
                        {t("deny")}
                      </button>
                    </li>
                  ))}
                </ul>
              </aside>
            )}
          </div>
          {confirmEnd && (
            <div role="alertdialog" aria-label={t("confirmEnd")} class="confirm">
              <p>{t("confirmEnd")}</p>
              <button type="button" class="danger" onClick={() => void call.end()}>
                {t("yesEnd")}
              </button>
              <button type="button" onClick={() => setConfirmEnd(false)}>
                {t("cancel")}
              </button>
            </div>
          )}
          {call.chatConversationId && (
            <MeetingChat
              lang={lang}
              messages={chat}
              send={async (body) => {
                const sent = await call.sendChat(body);
                setChat((messages) => withMessage(messages, sent));
              }}
            />
          )}
        </section>
      )}

      {(phase === "ended" || phase === "removed" || phase === "left" || phase === "failed") && (
        <section data-testid={phase} class="finished">
          <p>{t(phase === "failed" ? "mediaFailed" : phase)}</p>
          {phase === "failed" && (
            <button type="button" onClick={() => location.reload()}>
              {t("rejoin")}
            </button>
          )}
        </section>
      )}
    </main>
  );
}

/** Two short tones (Web Audio, no sound file): someone is waiting. Without audio the visible alert remains. */
function chime() {
  try {
    const audio = new AudioContext();
    [660, 880].forEach((frequency, index) => {
      const tone = audio.createOscillator();
      const volume = audio.createGain();
      tone.frequency.value = frequency;
      volume.gain.value = 0.15;
      tone.connect(volume).connect(audio.destination);
      tone.start(audio.currentTime + index * 0.18);
      tone.stop(audio.currentTime + index * 0.18 + 0.15);
    });
    window.setTimeout(() => void audio.close(), 1000);
  } catch {
    /* no audio output */
  }
}

/** People's messages in order, each once (the send ack and the history page may carry the same one);
 * system notices of the conversation (such as the meeting invitation) stay in the main client. */
function withMessage(messages: ChatMessage[], message: ChatMessage): ChatMessage[] {
  if (message.kind === "system" || messages.some((m) => m.id === message.id)) return messages;
  return [...messages, message].sort((a, b) => a.seq - b.seq);
}

function MeetingChat(props: { lang: Lang; messages: ChatMessage[]; send: (body: string) => Promise<void> }) {
  const t = (key: TextKey) => translate(props.lang, key);
  const [draft, setDraft] = useState("");
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => list.current?.lastElementChild?.scrollIntoView({ block: "nearest" }), [props.messages.length]);

  async function submit(event: Event) {
    event.preventDefault();
    const body = draft.trim();
    if (!body) return;
    setSending(true);
    setError(null);
    try {
      await props.send(body);
      setDraft("");
    } catch (exc) {
      // Keep the draft: nothing is lost, the user can send it again.
      setError((exc as Error).message.includes("timed out") ? t("chatTimeout") : (exc as Error).message);
    } finally {
      setSending(false);
    }
  }

  return (
    <aside data-testid="chat" class="chat" aria-labelledby="chat-heading">
      <h2 id="chat-heading">{t("chat")}</h2>
      <p class="chat-help">{t("chatHelp")}</p>
      <ol ref={list} aria-live="polite">
        {props.messages.length === 0 && <li class="chat-empty">{t("chatEmpty")}</li>}
        {props.messages.map((m) => (
          <li data-testid="chat-message" key={m.id}>
            <strong>{m.sender?.name ?? "Brygga"}</strong>{" "}
            <time dateTime={m.created_at}>
              {new Date(m.created_at).toLocaleTimeString(props.lang === "sv" ? "sv-SE" : "en-GB", {
                timeZone: "Europe/Stockholm",
                hour: "2-digit",
                minute: "2-digit",
              })}
            </time>
            <p>{m.body}</p>
          </li>
        ))}
      </ol>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <form onSubmit={submit}>
        <label>
          {t("chatMessage")}
          <textarea
            value={draft}
            maxLength={8000}
            rows={2}
            onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)}
          />
        </label>
        <button type="submit" disabled={sending || !draft.trim()}>
          {sending ? t("chatSending") : t("chatSend")}
        </button>
      </form>
    </aside>
  );
}

type CameraState = "checking" | "ok" | "none" | "denied" | "off";

/** Before joining: does the chosen camera give a picture? Frames decoded by an off-screen video element of
 * the preview stream; no picture within three seconds (or a track that ended or is muted) says so, and a
 * refused permission says what to do. */
function CameraCheck({ stream, audioOnly, problem, t }: { stream: MediaStream | null; audioOnly: boolean; problem: "denied" | "failed" | null; t: (key: TextKey) => string }) {
  const [state, setState] = useState<CameraState>("checking");
  useEffect(() => {
    if (problem) return setState(problem === "denied" ? "denied" : "none");
    if (audioOnly) return setState("off");
    const track = stream?.getVideoTracks()[0];
    if (!stream || !track) return setState(stream ? "none" : "checking");
    setState("checking");
    const probe = document.createElement("video");
    probe.muted = true;
    probe.playsInline = true;
    probe.srcObject = new MediaStream([track]);
    void probe.play().catch(() => undefined);
    const started = Date.now();
    const timer = window.setInterval(() => {
      const picture = probe.videoWidth > 0 && track.readyState === "live" && !track.muted;
      if (picture) setState("ok");
      else if (Date.now() - started > 3000) setState("none");
    }, 250);
    return () => {
      window.clearInterval(timer);
      probe.srcObject = null;
    };
  }, [stream, audioOnly, problem]);
  const text = { checking: t("cameraChecking"), ok: t("cameraWorks"), none: t("cameraNoPicture"), denied: t("cameraDenied"), off: t("cameraCheckOff") }[state];
  return (
    <p role="status" class={`camera-check camera-${state}`} data-testid="camera-check" data-state={state}>
      {text}
    </p>
  );
}

/** The microphone's level before joining (Web Audio analyser), so people see that they are heard. */
function MicLevel({ stream, label }: { stream: MediaStream | null; label: string }) {
  const [level, setLevel] = useState(0);
  useEffect(() => {
    if (!stream || stream.getAudioTracks().length === 0) return;
    const audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 512;
    audio.createMediaStreamSource(stream).connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    const timer = window.setInterval(() => {
      analyser.getByteTimeDomainData(samples);
      const peak = samples.reduce((max, sample) => Math.max(max, Math.abs(sample - 128)), 0);
      setLevel(Math.min(100, Math.round((peak / 128) * 100)));
    }, 150);
    return () => {
      window.clearInterval(timer);
      void audio.close();
    };
  }, [stream]);
  return (
    <label class="mic-level">
      {label}
      <meter min={0} max={100} low={5} optimum={50} value={level} data-testid="mic-level" data-level={level} />
    </label>
  );
}

function Video({ stream, muted, label }: { stream: MediaStream | null; muted?: boolean; label: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    if (ref.current && ref.current.srcObject !== stream) ref.current.srcObject = stream;
  }, [stream, stream?.getTracks().length]);
  return <video ref={ref} autoplay playsInline muted={muted} aria-label={label} />;
}

function Tile(props: {
  lang: Lang;
  participant: Participant | undefined;
  stream: MediaStream | null;
  stats?: RemoteVideoStats;
  self?: boolean;
  label?: string;
  host: boolean;
  onRemove: (() => void) | null;
}) {
  const { lang, participant: p, stats } = props;
  const t = (key: TextKey) => translate(lang, key);
  return (
    <figure
      data-testid="tile"
      data-participant-id={p?.participant_id}
      data-remote={props.self ? "false" : "true"}
      data-frames-decoded={stats?.framesDecoded ?? 0}
      data-frame-width={stats?.frameWidth ?? 0}
      data-bytes-received={stats?.bytesReceived ?? 0}
      data-codec={stats?.codec ?? ""}
      class="tile"
    >
      <Video stream={props.stream} muted={props.self} label={p?.name ?? props.label ?? ""} />
      <figcaption>
        <strong data-testid="name">{props.self ? `${p?.name ?? ""} (${t("you")})` : p?.name}</strong>
        {p?.host && <span class="badge">{t("host")}</span>}
        {p && !p.audio && <span class="badge">{t("muted")}</span>}
        {p?.screen && <span class="badge">{t("screen")}</span>}
        {p?.hand && (
          <span class="badge badge-hand" data-testid="hand">
            {t("handRaised")}
          </span>
        )}
        <br />
        {p?.unit && (
          <>
            <span data-testid="unit">{p.unit}</span>
            {" · "}
          </>
        )}
        <span data-testid="organisation">{p?.organisation ?? (p?.guest ? t("guest") : "")}</span>
        {" · "}
        <span data-testid="identity">{p ? identityLabel(lang, p.identity_method) : ""}</span>
        {props.host && !props.self && props.onRemove && (
          <button type="button" onClick={props.onRemove}>
            {t("remove")}
          </button>
        )}
      </figcaption>
    </figure>
  );
}

render(<App />, document.getElementById("app")!);
