// One meeting connection: socket.io signalling and a single RTCPeerConnection to Brygga's relay.
// The server always offers; we answer, attaching our camera/microphone to the "publish" m-lines.
import { io, type Socket } from "socket.io-client";

export type Participant = {
  participant_id: string;
  name: string;
  organisation: string | null;
  unit: string | null;
  identity_method: string;
  host: boolean;
  guest: boolean;
  audio: boolean;
  video: boolean;
  screen: boolean;
  hand: boolean;
};

/** A message of the meeting chat, which is the meeting's linked conversation (fields used here). */
export type ChatMessage = {
  id: string;
  seq: number;
  client_id: string;
  conversation_id: string;
  sender: { id: string; name: string } | null;
  kind?: "text" | "system";
  body: string | null;
  created_at: string;
};

export type RemoteVideoStats = { framesDecoded: number; frameWidth: number; bytesReceived: number; codec: string };

export type Auth = { token: string } | { guest_token: string } | Record<string, never>;

type Ack = { ok: true; [key: string]: unknown } | { ok: false; error: { code: string; message: string } };

type Offer = {
  meeting_id: string;
  sdp: string;
  tracks: Record<string, { participant_id: string; kind: string }>;
  publish: Record<string, string>;
};

export type CallEvents = {
  onState: (state: "waiting" | "joined" | "ended" | "removed" | "failed" | "left") => void;
  onParticipants: (participants: Participant[]) => void;
  onLobby: (waiting: Participant[]) => void;
  onStreams: (streams: Map<string, MediaStream>) => void;
  onMuteRequest: (request: { audio?: boolean; video?: boolean }) => void;
  onChatMessage: (message: ChatMessage) => void;
};

const CHAT_SEND_ATTEMPTS = 3;
const REJOIN_ATTEMPTS = 5;

const VIDEO_CAPS: RTCRtpEncodingParameters = { maxBitrate: 500_000, maxFramerate: 15 };

export class MeetingCall {
  socket: Socket;
  pc: RTCPeerConnection | null = null;
  participantId = "";
  host = false;
  /** Set when the meeting has a linked conversation this user may post in; never for guests. */
  chatConversationId: string | null = null;
  private tracksByMid: Record<string, { participant_id: string; kind: string }> = {};
  private streams = new Map<string, MediaStream>();
  private ready: Promise<void> = Promise.resolve();
  private pendingCandidates: RTCIceCandidateInit[] = [];
  private videoSender: RTCRtpSender | null = null;

  constructor(
    private meetingId: string,
    auth: Auth,
    private local: MediaStream,
    private events: CallEvents,
  ) {
    // Same origin; the token travels in the socket.io auth payload, never in a URL. After a reconnect
    // (e.g. the node we were on died) we join again: the meeting goes on on another node.
    this.socket = io({ auth, transports: ["websocket"], reconnectionDelay: 300, reconnectionDelayMax: 2000 });
    this.socket.on("connect", () => {
      if (this.connectedBefore && this.joining) void this.rejoin();
      this.connectedBefore = true;
    });
    this.socket.on("video:offer", (offer: Offer) => {
      this.ready = this.ready.then(() => this.answer(offer)).catch((error) => console.warn("negotiation", error));
    });
    this.socket.on("video:participants", (data: { participants: Participant[] }) =>
      this.events.onParticipants(data.participants),
    );
    this.socket.on("video:lobby", (data: { waiting: Participant[] }) => this.events.onLobby(data.waiting));
    this.socket.on("video:admitted", () => void this.join());
    this.socket.on("video:ended", () => this.finish("ended"));
    this.socket.on("video:removed", () => this.finish("removed"));
    // The room's relay or its node went away: join again, which reaches the room's new owner.
    this.socket.on("video:media_failed", () => void this.rejoin());
    this.socket.on("message:new", (message: ChatMessage) => {
      if (message.conversation_id === this.chatConversationId) this.events.onChatMessage(message);
    });
    this.socket.on("video:mute_request", (request: { audio?: boolean; video?: boolean }) =>
      this.events.onMuteRequest(request),
    );
  }

  private async call(event: string, payload: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const ack: Ack = await this.socket.timeout(20_000).emitWithAck(event, { meeting_id: this.meetingId, ...payload });
    if (!ack.ok) throw new Error(ack.error.message);
    return ack;
  }

  /** Set from the first join until the call finishes; reconnects and media failures rejoin. */
  private joining = false;
  private connectedBefore = false;
  private rejoins = 0;

  async join(): Promise<void> {
    this.joining = true;
    // The relay's first offer may overtake the join's ack: offers wait until this join made the peer.
    let joined = () => {};
    const previous = this.ready;
    this.ready = new Promise<void>((resolve) => (joined = resolve)).then(() => previous);
    try {
      const ack = await this.call("video:join");
      this.rejoins = 0;
      this.participantId = String(ack.participant_id);
      if (ack.state === "waiting") {
        this.events.onState("waiting");
        return;
      }
      this.host = Boolean(ack.host);
      this.chatConversationId = (ack.chat_conversation_id as string | null | undefined) ?? null;
      this.createPeer(ack.ice_servers as RTCIceServer[], ack.ice_transport_policy as RTCIceTransportPolicy);
      this.events.onParticipants(ack.participants as Participant[]);
      this.events.onLobby(ack.waiting as Participant[]);
      this.events.onState("joined");
    } finally {
      joined();
    }
  }

  private createPeer(iceServers: RTCIceServer[], policy: RTCIceTransportPolicy): void {
    // Only the TURN servers Brygga hands out; never a public STUN server.
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: policy, bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.onicecandidate = (event) => {
      if (!event.candidate) return;
      const candidate = event.candidate.toJSON();
      if (pc.remoteDescription && pc.localDescription && this.sentAnswer) {
        void this.sendCandidate(candidate);
      } else {
        this.pendingCandidates.push(candidate);
      }
    };
    pc.ontrack = (event) => {
      const info = this.tracksByMid[event.transceiver.mid ?? ""];
      if (!info) return;
      let stream = this.streams.get(info.participant_id);
      if (!stream) {
        stream = new MediaStream();
        this.streams.set(info.participant_id, stream);
      }
      for (const old of stream.getTracks().filter((t) => t.kind === event.track.kind)) stream.removeTrack(old);
      stream.addTrack(event.track);
      this.events.onStreams(new Map(this.streams));
    };
  }

  private sentAnswer = false;

  private async sendCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    await this.call("video:candidate", {
      candidate: candidate.candidate ?? "",
      sdp_mid: candidate.sdpMid ?? null,
      sdp_mline_index: candidate.sdpMLineIndex ?? null,
    }).catch(() => undefined);
  }

  private async answer(offer: Offer): Promise<void> {
    const pc = this.pc;
    if (!pc) return;
    Object.assign(this.tracksByMid, offer.tracks);
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    for (const transceiver of pc.getTransceivers()) {
      const kind = Object.keys(offer.publish).find((k) => offer.publish[k] === transceiver.mid);
      if (!kind) continue;
      const track = kind === "video" ? this.local.getVideoTracks()[0] : this.local.getAudioTracks()[0];
      if (transceiver.sender.track === null && track) await transceiver.sender.replaceTrack(track);
      transceiver.direction = "sendonly";
      if (kind === "video") this.videoSender = transceiver.sender;

    }
    await pc.setLocalDescription(await pc.createAnswer());
    await this.capVideo();
    await waitForGathering(pc, 1000); // most candidates go inside the answer; the rest trickle
    await this.call("video:answer", { sdp: pc.localDescription!.sdp });
    this.sentAnswer = true;
    for (const candidate of this.pendingCandidates.splice(0)) void this.sendCandidate(candidate);
    // Remove tiles whose tracks the server stopped forwarding (participant left).
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.currentDirection === "inactive" && transceiver.mid) {
        const info = this.tracksByMid[transceiver.mid];
        if (info) this.streams.delete(info.participant_id);
      }
    }
    this.events.onStreams(new Map(this.streams));
  }

  private async capVideo(): Promise<void> {
    // No simulcast through the relay: keep every publisher modest so weak links still get video.
    const sender = this.videoSender;
    if (!sender) return;
    const parameters = sender.getParameters();
    if (!parameters.encodings?.length) return;
    parameters.encodings[0] = { ...parameters.encodings[0], ...VIDEO_CAPS };
    await sender.setParameters(parameters).catch(() => undefined);
  }

  /** Raise or lower my hand; everyone sees it on my tile. */
  async setHand(up: boolean): Promise<void> {
    await this.call("video:mute", { hand: up });
  }

  async setMicrophone(on: boolean): Promise<void> {
    for (const track of this.local.getAudioTracks()) track.enabled = on;
    await this.call("video:mute", { audio: on }).catch(() => undefined);
  }

  async setCamera(on: boolean): Promise<void> {
    for (const track of this.local.getVideoTracks()) track.enabled = on;
    await this.call("video:mute", { video: on }).catch(() => undefined);
  }

  async replaceVideo(track: MediaStreamTrack | null, screen: boolean): Promise<void> {
    if (this.videoSender) await this.videoSender.replaceTrack(track);
    await this.call("video:mute", { screen, video: track !== null }).catch(() => undefined);
  }

  async setAudioOnly(on: boolean): Promise<void> {
    await this.call("video:bandwidth", { audio_only: on });
    await this.replaceVideo(on ? null : (this.local.getVideoTracks()[0] ?? null), false);
  }

  /** Post in the linked conversation. Stored once even if an ack is lost: resends reuse the client_id. */
  async sendChat(body: string): Promise<ChatMessage> {
    const payload = { conversation_id: this.chatConversationId, client_id: crypto.randomUUID(), body };
    for (let attempt = 1; ; attempt++) {
      let ack: Ack;
      try {
        ack = await this.socket.timeout(10_000).emitWithAck("message:send", payload);
      } catch (timeout) {
        if (attempt >= CHAT_SEND_ATTEMPTS || !this.socket.connected) throw timeout;
        continue;
      }
      if (!ack.ok) throw new Error(ack.error.message);
      return ack.message as ChatMessage;
    }
  }

  admit(participantId: string) {
    return this.call("video:admit", { participant_id: participantId });
  }
  remove(participantId: string) {
    return this.call("video:remove", { participant_id: participantId });
  }
  askToMute(participantId: string) {
    return this.call("video:mute", { participant_id: participantId, audio: false });
  }
  async end(): Promise<void> {
    await this.call("video:end").catch(() => undefined); // our own socket closes on video:ended
  }
  async leave(): Promise<void> {
    await this.call("video:leave").catch(() => undefined);
    this.finish("left");
  }

  async remoteVideoStats(): Promise<Map<string, RemoteVideoStats>> {
    const result = new Map<string, RemoteVideoStats>();
    if (!this.pc) return result;
    const report = await this.pc.getStats();
    const codecs = new Map<string, string>();
    report.forEach((entry) => {
      if (entry.type === "codec") codecs.set(entry.id, entry.mimeType);
    });
    report.forEach((entry) => {
      if (entry.type !== "inbound-rtp" || entry.kind !== "video") return;
      const info = this.tracksByMid[entry.mid ?? ""];
      if (!info) return;
      result.set(info.participant_id, {
        framesDecoded: entry.framesDecoded ?? 0,
        frameWidth: entry.frameWidth ?? 0,
        bytesReceived: entry.bytesReceived ?? 0,
        codec: codecs.get(entry.codecId) ?? "",
      });
    });
    return result;
  }

  /** How our media flows: the local candidate type of the selected pair ("host", "relay", ...). */
  async route(): Promise<string> {
    if (!this.pc) return "";
    const report = await this.pc.getStats();
    let pairId = "";
    report.forEach((entry) => {
      if (entry.type === "transport" && entry.selectedCandidatePairId) pairId = entry.selectedCandidatePairId;
    });
    const pair = pairId ? report.get(pairId) : undefined;
    const local = pair ? report.get(pair.localCandidateId) : undefined;
    return local?.candidateType ?? "";
  }

  private async rejoin(): Promise<void> {
    if (!this.joining || !this.socket.connected) return; // "connect" rejoins after the reconnect
    this.pc?.close();
    this.pc = null;
    this.sentAnswer = false;
    this.pendingCandidates = [];
    this.tracksByMid = {};
    this.ready = Promise.resolve();
    for (;;) {
      try {
        await this.join();
        return;
      } catch (error) {
        if (!this.joining || ++this.rejoins >= REJOIN_ATTEMPTS) {
          if (this.joining) this.finish("failed");
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 500 * this.rejoins));
      }
    }
  }

  private finish(state: "ended" | "removed" | "failed" | "left"): void {
    this.joining = false;
    this.pc?.close();
    this.pc = null;
    this.socket.disconnect();
    this.events.onState(state);
  }

  close(): void {
    this.joining = false;
    this.pc?.close();
    this.socket.disconnect();
  }
}

function waitForGathering(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}
