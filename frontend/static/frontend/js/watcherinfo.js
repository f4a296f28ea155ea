// Watcher information (RFC 3857 event package, RFC 3858 format): who watches the user's
// presence and who waits for a decision. The first NOTIFY carries the full state, later
// ones may be partial (only the watchers that changed); WatcherList keeps the sum.

const WINFO = "urn:ietf:params:xml:ns:watcherinfo";

function parse(body) {
  const doc = new DOMParser().parseFromString(body, "application/xml");
  const root = doc.documentElement;
  if (root.localName !== "watcherinfo" || root.namespaceURI !== WINFO) return null;
  const watchers = [];
  for (const list of root.getElementsByTagNameNS(WINFO, "watcher-list")) {
    if (list.getAttribute("package") !== "presence") continue;
    for (const w of list.getElementsByTagNameNS(WINFO, "watcher")) {
      watchers.push({
        id: w.getAttribute("id"),
        uri: w.textContent.trim(),
        status: w.getAttribute("status"), // pending, active, waiting, terminated
        event: w.getAttribute("event") || "",
        displayName: w.getAttribute("display-name") || "",
      });
    }
  }
  return {
    version: Number(root.getAttribute("version")),
    full: root.getAttribute("state") === "full",
    watchers,
  };
}

export class WatcherList {
  constructor() {
    this.byId = new Map();
    this.version = null;
  }

  /**
   * Apply one NOTIFY body. Returns false when a partial document does not follow the
   * version we hold (a NOTIFY was lost): the caller should refresh the subscription,
   * which brings the full state again (RFC 3857 §5.3).
   */
  apply(body) {
    const doc = body && body.trim() ? parse(body) : null;
    if (!doc) return true;
    if (!doc.full && this.version !== null && doc.version !== this.version + 1) {
      this.version = null;
      return false;
    }
    if (doc.full) this.byId.clear();
    for (const watcher of doc.watchers) {
      if (watcher.status === "terminated") this.byId.delete(watcher.id);
      else this.byId.set(watcher.id, watcher);
    }
    this.version = doc.version;
    return true;
  }

  clear() {
    this.byId.clear();
    this.version = null;
  }

  /** One entry per watcher URI (a watcher may subscribe from several devices). */
  withStatus(...statuses) {
    const seen = new Map();
    for (const w of this.byId.values()) {
      if (statuses.includes(w.status) && !seen.has(w.uri)) seen.set(w.uri, w);
    }
    return Array.from(seen.values()).sort((a, b) => a.uri.localeCompare(b.uri));
  }
}
