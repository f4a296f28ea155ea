// The contact list: one row per resource-lists entry with its live presence. Rows are
// kept by URI and updated in place, so a NOTIFY never moves the keyboard focus.

import { STATUSES, readPresence } from "./pidf.js";

const ACTIVITY_LABELS = { "on-the-phone": "on the phone", "in-transit": "in transit" };

/** What a contact row shows for one NOTIFY of the presence subscription. */
export function presenceFromNotify({ state, reason, body }) {
  if (state === "pending") return { key: "pending", label: "Waiting for approval", activity: "", note: "" };
  if (state === "terminated") {
    return reason === "rejected"
      ? { key: "blocked", label: "Does not share status with you", activity: "", note: "" }
      : { key: "unknown", label: "Status unavailable", activity: "", note: "" };
  }
  const { status, activity, note } = readPresence(body);
  const shownActivity = activity && activity !== status ? ACTIVITY_LABELS[activity] || activity : "";
  return { key: status, label: STATUSES[status].label, activity: shownActivity, note };
}

export class ContactsView {
  constructor({ list, template, empty, onChat, onRemove, onRetry }) {
    Object.assign(this, { list, template, empty, onChat, onRemove, onRetry });
    this.rows = new Map();
  }

  /** Show exactly these contacts ([{uri, name}]), keeping the rows already there. */
  render(contacts) {
    const wanted = new Set(contacts.map((c) => c.uri));
    for (const [uri, row] of this.rows) {
      if (!wanted.has(uri)) {
        row.remove();
        this.rows.delete(uri);
      }
    }
    for (const contact of contacts) {
      if (!this.rows.has(contact.uri)) this.rows.set(contact.uri, this.makeRow(contact));
      this.list.append(this.rows.get(contact.uri)); // keeps the document's order
    }
    this.empty.hidden = contacts.length > 0;
  }

  makeRow({ uri, name }) {
    const row = this.template.content.firstElementChild.cloneNode(true);
    const label = name || uri.replace(/^sip:/, "");
    row.dataset.uri = uri;
    row.dataset.status = "checking";
    row.querySelector(".name").textContent = label;
    row.querySelector(".status").textContent = "Checking…";
    const button = (selector, text, handler) => {
      const el = row.querySelector(selector);
      el.setAttribute("aria-label", `${text} ${label}`);
      el.addEventListener("click", () => handler(uri, el));
    };
    button(".chat-button", "Chat with", this.onChat);
    button(".remove-button", "Remove", this.onRemove);
    button(".retry-button", "Ask again to see", this.onRetry);
    return row;
  }

  setPresence(uri, presence) {
    const row = this.rows.get(uri);
    if (!row) return;
    row.dataset.status = presence.key;
    row.querySelector(".status").textContent = presence.label;
    row.querySelector(".activity").textContent = presence.activity ? ` · ${presence.activity}` : "";
    row.querySelector(".note").textContent = presence.note;
    row.querySelector(".retry-button").hidden = presence.key !== "blocked";
  }

  setUnread(uri, count) {
    const row = this.rows.get(uri);
    if (!row) return;
    const badge = row.querySelector(".unread");
    badge.hidden = count === 0;
    badge.textContent = count === 1 ? "1 new message" : `${count} new messages`;
  }

  label(uri) {
    const row = this.rows.get(uri);
    return row ? row.querySelector(".name").textContent : uri.replace(/^sip:/, "");
  }
}
