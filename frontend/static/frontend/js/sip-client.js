// The page's SIP user agent: SIP.js over WebSocket (RFC 7118) with the short-lived
// credentials of POST /api/sip-credentials/. It registers, keeps the subscriptions and the
// presence publication the page asks for, and puts them all back after the WebSocket
// drops (a server restart): reconnect with backoff, re-register, subscribe anew, publish
// the current status again. The page listens to its events:
//
//   state    {state, detail}   offline | connecting | registering | registered |
//                              reconnecting | failed
//   notify   {target, event, state, reason, body}   a NOTIFY of one of watch()'s subscriptions
//   message  {from, body, contentType}              an incoming MESSAGE (RFC 3428)
//   signedout                                       the Django session ended

import {
  Messager,
  Publisher,
  PublisherState,
  Registerer,
  RegistererState,
  Subscriber,
  SubscriptionState,
  UserAgent,
} from "../vendor/sip.js";

const REGISTER_EXPIRES = 600;
const SUBSCRIBE_EXPIRES = 600;
// A closed page's status stays up until its publication runs out: the PUBLISH removing
// it on pagehide is challenged (401) like every request, and a page being unloaded cannot
// answer. Short, so that the status of a closed tab lapses soon (refreshed at 90 %).
const PUBLISH_EXPIRES = 120;
const RECONNECT_DELAYS = [1, 2, 4, 8, 15, 30]; // seconds, the last one repeats
const RESUBSCRIBE_DELAYS = [30, 60, 120, 300, 600];
const REREGISTER_DELAYS = [5, 15, 30, 60];

export class SignedOut extends Error {}

async function fetchCredentials(url, csrfToken) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 403 || response.status === 401) throw new SignedOut();
  if (!response.ok) throw new Error(`credentials: HTTP ${response.status}`);
  return { ...(await response.json()), fetchedAt: Date.now() };
}

/** The credentials' WebSocket URL, as wss:// when the page itself came over https. */
export function webSocketUrl(wsUrl, pageProtocol = location.protocol) {
  return pageProtocol === "https:" ? wsUrl.replace(/^ws:/, "wss:") : wsUrl;
}

function deviceId(aor) {
  // One id per browser and user: the PIDF tuple and person ids of this device, so that a
  // publication left over from before a reconnect is replaced by the next one (the
  // server merges tuples by id, the newest winning) instead of showing beside it.
  const key = `sipws.device.${aor}`;
  let id = localStorage.getItem(key);
  if (!id) {
    id = crypto.randomUUID();
    localStorage.setItem(key, id);
  }
  return id;
}

/** One subscription the page wants, re-created after every reconnect. */
class Watch {
  constructor(client, target, event, accept) {
    Object.assign(this, { client, target, event, accept });
    this.subscriber = null;
    this.retries = 0;
    this.retryTimer = null;
    this.lastReason = "";
  }

  start() {
    this.drop();
    const subscriber = new Subscriber(
      this.client.ua,
      UserAgent.makeURI(this.target),
      this.event,
      { expires: SUBSCRIBE_EXPIRES, extraHeaders: [`Accept: ${this.accept}`] },
    );
    subscriber.delegate = { onNotify: (notification) => this.onNotify(notification) };
    subscriber.stateChange.addListener((state) => {
      if (state === SubscriptionState.Terminated && this.subscriber === subscriber) {
        this.onTerminated();
      }
    });
    this.subscriber = subscriber;
    this.lastReason = "";
    subscriber.subscribe().catch((error) => this.client.log("warn", `subscribe: ${error}`));
  }

  onNotify(notification) {
    notification.accept();
    const request = notification.request;
    const subState = request.parseHeader("Subscription-State") || {};
    if (subState.state === "active") this.retries = 0;
    if (subState.reason) this.lastReason = subState.reason;
    this.client.emit("notify", {
      target: this.target,
      event: this.event,
      state: subState.state || "active",
      reason: subState.reason || "",
      body: request.body || "",
      contentType: request.getHeader("Content-Type") || "",
    });
  }

  onTerminated() {
    // Ended by the server or by a failure, not by us. RFC 6665 §4.1.3: after "rejected"
    // do not ask again on our own; otherwise try later, slower each time.
    this.subscriber = null;
    const rejected = this.lastReason === "rejected";
    this.client.emit("notify", {
      target: this.target,
      event: this.event,
      state: "terminated",
      reason: this.lastReason || "failed",
      body: "",
      contentType: "",
    });
    if (!rejected && this.client.connected) {
      const delay = RESUBSCRIBE_DELAYS[Math.min(this.retries++, RESUBSCRIBE_DELAYS.length - 1)];
      this.retryTimer = setTimeout(() => this.client.connected && this.start(), delay * 1000);
    }
  }

  /** Forget the current subscription (sending an unsubscribe if it is up). */
  drop() {
    clearTimeout(this.retryTimer);
    const old = this.subscriber;
    this.subscriber = null;
    if (old) old.dispose().catch(() => {});
  }
}

export class SipClient extends EventTarget {
  constructor({ aor, credentialsUrl, csrfToken, debug = false }) {
    super();
    Object.assign(this, { aor, credentialsUrl, csrfToken, debug });
    this.device = deviceId(aor);
    this.state = "offline";
    this.watches = new Map();
    this.presenceBody = null;
    this.publisher = null;
    this.reconnectAttempt = 0;
    this.reconnectTimer = null;
    this.credentialsTimer = null;
    this.registerTimer = null;
    this.registerFailures = 0;
    this.stopping = false;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  log(level, text) {
    // SIP.js reports transport failures at level "error"; they are the network's, not the
    // page's, and the connection badge shows them, so they stay warnings.
    if (level === "error" || level === "warn") console.warn(`SIP: ${text}`);
    else if (this.debug) console.debug(`SIP: ${text}`);
  }

  setState(state, detail = "") {
    if (state === this.state && detail === this.stateDetail) return;
    this.state = state;
    this.stateDetail = detail;
    this.emit("state", { state, detail });
  }

  get connected() {
    return Boolean(this.ua && this.ua.isConnected());
  }

  async start() {
    this.setState("connecting");
    this.credentials = await fetchCredentials(this.credentialsUrl, this.csrfToken);
    this.ua = new UserAgent({
      uri: UserAgent.makeURI(this.aor),
      authorizationUsername: this.credentials.username,
      authorizationPassword: this.credentials.password,
      instanceId: this.device,
      transportOptions: {
        server: webSocketUrl(this.credentials.ws_url),
        connectionTimeout: 5,
        traceSip: this.debug,
      },
      userAgentString: "sipws-web (SIP.js 0.21.2)",
      logBuiltinEnabled: false,
      logLevel: this.debug ? "debug" : "warn",
      logConnector: (level, category, label, content) => this.log(level, `${category} ${content}`),
      delegate: {
        onConnect: () => this.onConnect(),
        onDisconnect: (error) => this.onDisconnect(error),
        onMessage: (message) => this.onMessage(message),
      },
    });
    // Refresh at 90 % of the binding's life (SIP.js's default 99 % leaves too little slack).
    this.registerer = new Registerer(this.ua, { expires: REGISTER_EXPIRES, refreshFrequency: 90 });
    this.registerer.stateChange.addListener((state) => this.onRegistererState(state));
    this.scheduleCredentialsRefresh();
    window.addEventListener("online", () => this.reconnectNow());
    try {
      await this.ua.start(); // onConnect does the rest
    } catch (error) {
      this.onDisconnect(error);
    }
  }

  // --- connection ---------------------------------------------------------------------

  onConnect() {
    this.reconnectAttempt = 0;
    this.registerFailures = 0;
    clearTimeout(this.reconnectTimer);
    this.setState("registering");
    this.register();
    for (const watch of this.watches.values()) watch.start();
    if (this.presenceBody) this.sendPresence();
  }

  register() {
    clearTimeout(this.registerTimer);
    const send = () =>
      this.registerer
        .register({
          requestDelegate: {
            onAccept: () => {
              this.registerFailures = 0;
              this.setState("registered");
            },
            onReject: ({ message }) => {
              this.setState("failed", `registration refused: ${message.statusCode} ${message.reasonPhrase}`);
            },
          },
        })
        .catch((error) => this.log("warn", `register: ${error}`));
    if (!this.registerer.waiting) return send();
    // A REGISTER sent before the drop is still waiting for its answer (or timeout).
    const once = (waiting) => {
      if (waiting) return;
      this.registerer.waitingChange.removeListener(once);
      if (this.connected) send();
    };
    this.registerer.waitingChange.addListener(once);
  }

  onRegistererState(state) {
    // Unregistered while connected: a REGISTER (ours, or SIP.js's refresh) failed or the
    // binding ran out. Try again after a pause, with fresh credentials if they are old.
    if (this.stopping || state !== RegistererState.Unregistered || !this.connected) return;
    clearTimeout(this.registerTimer);
    const index = Math.min(this.registerFailures++, REREGISTER_DELAYS.length - 1);
    if (this.state !== "failed") this.setState("registering");
    this.registerTimer = setTimeout(async () => {
      if (!this.connected) return;
      const { ttl, fetchedAt } = this.credentials;
      if (Date.now() - fetchedAt > ttl * 800) await this.refreshCredentials();
      this.register();
    }, REREGISTER_DELAYS[index] * 1000);
  }

  onDisconnect(error) {
    if (this.stopping || !error) return;
    clearTimeout(this.registerTimer);
    this.setState("reconnecting", String(error.message || error));
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    clearTimeout(this.reconnectTimer);
    const index = Math.min(this.reconnectAttempt++, RECONNECT_DELAYS.length - 1);
    const delay = RECONNECT_DELAYS[index] * 1000 * (0.8 + Math.random() * 0.4);
    this.reconnectTimer = setTimeout(() => this.reconnectNow(), delay);
  }

  async reconnectNow() {
    if (this.stopping || !this.ua || this.connected) return;
    clearTimeout(this.reconnectTimer);
    try {
      await this.ua.reconnect(); // onConnect does the rest
    } catch (error) {
      this.setState("reconnecting", String(error.message || error));
      this.scheduleReconnect();
    }
  }

  // --- credentials --------------------------------------------------------------------

  scheduleCredentialsRefresh(delay) {
    clearTimeout(this.credentialsTimer);
    // From the time we fetched them and their lifetime, not the server's clock.
    const { ttl, fetchedAt } = this.credentials;
    const due = fetchedAt + ttl * 1000 - Math.min(300, ttl / 5) * 1000 - Date.now();
    this.credentialsTimer = setTimeout(() => this.refreshCredentials(), delay ?? Math.max(due, 1000));
  }

  async refreshCredentials() {
    try {
      this.credentials = await fetchCredentials(this.credentialsUrl, this.csrfToken);
    } catch (error) {
      if (error instanceof SignedOut) {
        this.emit("signedout");
        return;
      }
      this.log("warn", `credentials refresh failed, trying again soon: ${error}`);
      this.scheduleCredentialsRefresh(30000);
      return;
    }
    // SIP.js reads these at every challenge, so the next REGISTER, SUBSCRIBE, PUBLISH or
    // MESSAGE answers with the new ones.
    this.ua.configuration.authorizationUsername = this.credentials.username;
    this.ua.configuration.authorizationPassword = this.credentials.password;
    this.scheduleCredentialsRefresh();
    // But SIP.js's registration refreshes resend the Authorization of the last REGISTER,
    // which the server refuses (403) once the old credentials have ended. Re-register
    // now, while they are still valid: the server's challenge gets the new ones.
    if (this.connected && this.registerer.state === RegistererState.Registered) this.register();
  }

  // --- subscriptions ------------------------------------------------------------------

  /** Keep a subscription to `event` of `target` up (presence, presence.winfo, ...). */
  watch(target, event, accept) {
    const key = `${event} ${target}`;
    let watch = this.watches.get(key);
    if (!watch) {
      watch = new Watch(this, target, event, accept);
      this.watches.set(key, watch);
      if (this.connected) watch.start();
    }
    return watch;
  }

  unwatch(target, event) {
    const key = `${event} ${target}`;
    const watch = this.watches.get(key);
    if (watch) {
      this.watches.delete(key);
      watch.drop();
    }
  }

  /** Subscribe again now, e.g. after the user allowed us again or winfo lost a version. */
  rewatch(target, event) {
    const watch = this.watches.get(`${event} ${target}`);
    if (watch && this.connected) watch.start();
  }

  // --- publication --------------------------------------------------------------------

  /** Publish this PIDF body now and keep it published (refreshed by SIP.js before expiry). */
  setPresence(body) {
    this.presenceBody = body;
    if (this.connected) this.sendPresence();
  }

  sendPresence() {
    if (!this.publisher || this.publisher.state === PublisherState.Terminated) {
      this.publisher = new Publisher(this.ua, UserAgent.makeURI(this.aor), "presence", {
        contentType: "application/pidf+xml",
        expires: PUBLISH_EXPIRES,
      });
    }
    // A known ETag makes this a modify (SIP-If-Match); a 412 makes SIP.js start afresh.
    this.publisher.publish(this.presenceBody).catch((e) => this.log("warn", `publish: ${e}`));
  }

  // --- chat ---------------------------------------------------------------------------

  /** Send a text MESSAGE; resolves to the final status code (0: could not be sent). */
  sendMessage(target, text) {
    return new Promise((resolve) => {
      if (!this.connected) return resolve(0);
      const messager = new Messager(this.ua, UserAgent.makeURI(target), text, "text/plain");
      messager
        .message({
          requestDelegate: {
            onAccept: (response) => resolve(response.message.statusCode),
            onReject: (response) => resolve(response.message.statusCode),
          },
        })
        .catch(() => resolve(0));
    });
  }

  onMessage(message) {
    message.accept();
    const request = message.request;
    this.emit("message", {
      from: `sip:${request.from.uri.aor}`, // as the contact list names people: no parameters
      displayName: request.from.displayName || "",
      body: request.body || "",
      contentType: (request.getHeader("Content-Type") || "text/plain").split(";")[0].trim(),
    });
  }

  // --- leaving ------------------------------------------------------------------------

  /**
   * Page going away: ask to remove the publication and the binding, without waiting. Best
   * effort: if the server challenges the request, nobody is left to answer, and the
   * publication lapses at its expiry instead (PUBLISH_EXPIRES).
   */
  leave() {
    if (!this.connected) return;
    try {
      if (this.publisher && this.publisher.state === PublisherState.Published) this.publisher.unpublish();
      if (this.registerer.state === RegistererState.Registered) this.registerer.unregister();
    } catch (error) {
      this.log("warn", `leave: ${error}`);
    }
  }

  /** Sign-out: unpublish, unsubscribe and unregister, waiting (at most `timeoutMs`). */
  async stop(timeoutMs = 3000) {
    if (!this.ua || this.stopping) return;
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.credentialsTimer);
    clearTimeout(this.registerTimer);
    const done = (async () => {
      if (this.connected && this.publisher && this.publisher.state === PublisherState.Published) {
        await new Promise((resolve) => {
          this.publisher.stateChange.addListener(resolve);
          this.publisher.unpublish();
        });
      }
      await this.ua.stop(); // unsubscribes and unregisters
    })();
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
    this.setState("offline");
  }
}
