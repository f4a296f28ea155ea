// Chat (SIP MESSAGE, RFC 3428): one conversation per peer, kept for the life of the page;
// the open one is shown, the others count their unread messages.

const RESULTS = {
  200: "delivered",
  202: "stored, delivered when they come online",
  404: "no such user",
  408: "no answer",
  480: "not online",
  0: "not sent: no connection",
};

function resultText(status) {
  if (status >= 200 && status < 300) return RESULTS[status] || "delivered";
  return RESULTS[status] || `not delivered (${status})`;
}

export class ChatView {
  constructor({ title, hint, log, form, input, onSend, onUnread }) {
    Object.assign(this, { title, hint, log, form, input, onSend, onUnread });
    this.conversations = new Map(); // uri -> [{direction, text, time, status}]
    this.unread = new Map();
    this.peer = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
  }

  open(uri, label) {
    this.peer = uri;
    this.title.textContent = `Chat with ${label}`;
    this.hint.hidden = true;
    this.form.hidden = false;
    this.log.replaceChildren(...(this.conversations.get(uri) || []).map((e) => this.render(e)));
    this.unread.set(uri, 0);
    this.onUnread(uri, 0);
    this.input.focus();
  }

  add(uri, entry) {
    if (!this.conversations.has(uri)) this.conversations.set(uri, []);
    this.conversations.get(uri).push(entry);
    if (uri === this.peer) {
      this.log.append(this.render(entry));
      this.log.lastElementChild.scrollIntoView({ block: "nearest" });
    } else if (entry.direction === "in") {
      const count = (this.unread.get(uri) || 0) + 1;
      this.unread.set(uri, count);
      this.onUnread(uri, count);
    }
  }

  async send() {
    const text = this.input.value.trim();
    if (!text || !this.peer) return;
    const entry = { direction: "out", text, time: new Date(), status: "sending…" };
    this.add(this.peer, entry);
    this.input.value = "";
    const status = await this.onSend(this.peer, text);
    entry.status = resultText(status);
    entry.failed = !(status >= 200 && status < 300);
    if (entry.element) this.fillStatus(entry);
  }

  render(entry) {
    const item = document.createElement("li");
    item.className = `bubble ${entry.direction}`;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = entry.direction === "out" ? "You: " : "They: ";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = entry.text;
    const meta = document.createElement("span");
    meta.className = "meta";
    item.append(who, text, meta);
    entry.element = item;
    this.fillStatus(entry);
    return item;
  }

  fillStatus(entry) {
    const time = entry.time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const meta = entry.element.querySelector(".meta");
    meta.textContent = entry.direction === "out" ? `${time} · ${entry.status}` : time;
    entry.element.classList.toggle("failed", Boolean(entry.failed));
  }
}
