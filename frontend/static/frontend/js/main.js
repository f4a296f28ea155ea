// The web client page: wires the SIP user agent (sip-client.js), the user's XCAP
// documents (xcap.js) and the views together. Everything the page knows comes from SIP
// over WebSocket, XCAP and POST /api/sip-credentials/, as a third-party web app's would.

import { ChatView } from "./chat-view.js";
import { ContactsView, presenceFromNotify } from "./contacts-view.js";
import { parseMessageSummary } from "./message-summary.js";
import { STATUSES, buildPidf } from "./pidf.js";
import { SignedOut, SipClient } from "./sip-client.js";
import { WatchersView } from "./watchers-view.js";
import { WatcherList } from "./watcherinfo.js";
import { ContactList, PresenceRules } from "./xcap.js";

const $ = (id) => document.getElementById(id);
const aor = document.body.dataset.aor;
const ownDomain = aor.split("@")[1];
const csrfToken = document.querySelector("#logout-form input[name=csrfmiddlewaretoken]").value;
const xcapOptions = { root: document.body.dataset.xcapRoot, xui: aor, csrfToken };
const loginUrl = document.body.dataset.loginUrl;

const client = new SipClient({
  aor,
  credentialsUrl: document.body.dataset.credentialsUrl,
  csrfToken,
  debug: localStorage.getItem("sipws.debug") === "1",
});
const contactList = new ContactList(xcapOptions);
const presenceRules = new PresenceRules(xcapOptions);
const watcherList = new WatcherList();

// --- connection state -------------------------------------------------------------------

const STATE_LABELS = {
  offline: "Offline",
  connecting: "Connecting…",
  registering: "Registering…",
  registered: "Online",
  reconnecting: "Connection lost, reconnecting…",
  failed: "Not registered",
};

client.addEventListener("state", ({ detail: { state, detail } }) => {
  const badge = $("connection");
  badge.dataset.state = state;
  badge.textContent = state === "failed" && detail ? `${STATE_LABELS[state]} (${detail})` : STATE_LABELS[state];
  badge.title = detail || "";
  document.body.dataset.sipState = state;
});

client.addEventListener("signedout", () => location.assign(loginUrl));

// --- my status (PUBLISH) ----------------------------------------------------------------

const statusKey = `sipws.status.${aor}`;

function publishStatus({ status, note }) {
  const body = buildPidf({
    entity: aor,
    tupleId: `t-${client.device}`,
    personId: `p-${client.device}`,
    status,
    note,
  });
  client.setPresence(body);
  localStorage.setItem(statusKey, JSON.stringify({ status, note }));
  const label = STATUSES[status].label;
  $("status-result").textContent = note ? `You are ${label}: “${note}”` : `You are ${label}.`;
}

$("status-form").addEventListener("submit", (event) => {
  event.preventDefault();
  publishStatus({ status: $("status-select").value, note: $("status-note").value.trim() });
});

// --- contacts (resource-lists over XCAP, presence subscriptions) ------------------------

let contacts = [];

function showContactsError(error) {
  const box = $("contacts-error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

function setContacts(list) {
  const before = new Set(contacts.map((c) => c.uri));
  const after = new Set(list.map((c) => c.uri));
  for (const uri of before) if (!after.has(uri)) client.unwatch(uri, "presence");
  for (const uri of after) if (!before.has(uri)) client.watch(uri, "presence", "application/pidf+xml");
  contacts = list;
  contactsView.render(list);
}

/** "bob", "bob@example.com" or "sip:bob@example.com" → "sip:bob@example.com", or null. */
function toSipUri(text) {
  let address = text.trim().replace(/^sips?:/i, "");
  if (!address) return null;
  if (!address.includes("@")) address = `${address}@${ownDomain}`;
  const match = /^([^@\s<>";:]+)@([A-Za-z0-9.-]+(?::\d+)?)$/.exec(address);
  return match ? `sip:${match[1]}@${match[2].toLowerCase()}` : null;
}

const contactsView = new ContactsView({
  list: $("contact-list"),
  template: $("contact-row"),
  empty: $("contacts-empty"),
  onChat: (uri) => chatView.open(uri, contactsView.label(uri)),
  onRemove: async (uri, button) => {
    button.disabled = true;
    try {
      setContacts(await contactList.remove(uri));
      showContactsError(null);
      $("contact-address").focus(); // the row and its button are gone
    } catch (error) {
      showContactsError(error);
      button.disabled = false;
    }
  },
  onRetry: (uri) => client.rewatch(uri, "presence"),
});

$("add-contact-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("contact-address");
  const uri = toSipUri(input.value);
  if (!uri) return showContactsError(`“${input.value}” is not an address like bob@${ownDomain}.`);
  if (uri === aor) return showContactsError("That is your own address.");
  try {
    setContacts(await contactList.add(uri));
    showContactsError(null);
    input.value = "";
  } catch (error) {
    showContactsError(error);
  }
});

// --- watchers (presence.winfo, pres-rules over XCAP) ------------------------------------

const watchersView = new WatchersView({
  pendingList: $("pending-list"),
  pendingEmpty: $("pending-empty"),
  activeList: $("active-list"),
  activeEmpty: $("active-empty"),
  template: $("watcher-row"),
  onDecide: (uri, handling) =>
    presenceRules.decide(uri, handling).catch((error) => {
      $("status-result").textContent = `Could not save your decision: ${error.message}`;
    }),
});

// --- message waiting --------------------------------------------------------------------

function showMessageSummary(summary) {
  const text = $("mwi-summary");
  const voice = summary && summary.voice;
  $("mwi-new").textContent = voice ? voice.new : summary ? 0 : "–";
  $("mwi-old").textContent = voice ? voice.old : summary ? 0 : "–";
  text.dataset.waiting = summary ? (summary.waiting ? "yes" : "no") : "unknown";
  if (!summary) text.textContent = "No voicemail information.";
  else if (!summary.waiting) text.textContent = "No new voice messages.";
  else {
    const n = voice ? voice.new : 0;
    text.textContent = n === 1 ? "You have 1 new voice message." : `You have ${n} new voice messages.`;
  }
}

// --- chat -------------------------------------------------------------------------------

const chatView = new ChatView({
  title: $("chat-title"),
  hint: $("chat-hint"),
  log: $("chat-log"),
  form: $("chat-form"),
  input: $("chat-input"),
  onSend: (uri, text) => client.sendMessage(uri, text),
  onUnread: (uri, count) => contactsView.setUnread(uri, count),
});

client.addEventListener("message", ({ detail }) => {
  const text = detail.contentType === "text/plain" ? detail.body : `[${detail.contentType} message]`;
  chatView.add(detail.from, { direction: "in", text, time: new Date() });
  if (!chatView.peer) chatView.open(detail.from, contactsView.label(detail.from));
});

// --- NOTIFYs of every subscription ------------------------------------------------------

client.addEventListener("notify", ({ detail }) => {
  if (detail.event === "presence") {
    contactsView.setPresence(detail.target, presenceFromNotify(detail));
  } else if (detail.event === "presence.winfo") {
    if (detail.state === "terminated") watcherList.clear();
    else if (!watcherList.apply(detail.body)) client.rewatch(aor, "presence.winfo");
    watchersView.render(watcherList);
  } else if (detail.event === "message-summary") {
    showMessageSummary(detail.state === "terminated" ? null : parseMessageSummary(detail.body));
  }
});

// --- leaving ----------------------------------------------------------------------------

$("logout-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  form.querySelector("button").disabled = true;
  await client.stop(); // the final PUBLISH, unsubscribe and unregister, then sign out
  form.submit();
});

// Closing the tab: ask to remove our status now rather than at its expiry (best effort,
// see SipClient.leave).
window.addEventListener("pagehide", () => client.leave());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) location.reload(); // back from the bfcache: start over
});

// --- start ------------------------------------------------------------------------------

async function main() {
  client.watch(aor, "presence.winfo", "application/watcherinfo+xml");
  client.watch(aor, "message-summary", "application/simple-message-summary");
  const saved = JSON.parse(localStorage.getItem(statusKey) || "null") || { status: "available", note: "" };
  $("status-select").value = saved.status in STATUSES ? saved.status : "available";
  $("status-note").value = saved.note || "";
  const started = client.start().then(() => publishStatus({
    status: $("status-select").value,
    note: $("status-note").value.trim(),
  }));
  try {
    setContacts(await contactList.load());
  } catch (error) {
    showContactsError(error);
  }
  try {
    await started;
  } catch (error) {
    if (error instanceof SignedOut) location.assign(loginUrl);
    else client.setState("failed", String(error.message || error));
  }
}

main();
