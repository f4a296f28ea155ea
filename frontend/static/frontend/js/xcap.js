// The user's XCAP documents (RFC 4825), read and written with the page's Django session:
// the contact list (resource-lists, RFC 4826) and the presence rules (pres-rules,
// RFC 5025 over common-policy, RFC 4745). Each edit is a read, a change to the DOM, and a
// PUT of the whole document with If-Match; a 412 (someone else wrote in between) starts
// over from a fresh read.

const RL = "urn:ietf:params:xml:ns:resource-lists";
const CP = "urn:ietf:params:xml:ns:common-policy";
const PR = "urn:ietf:params:xml:ns:pres-rules";

export class XcapError extends Error {
  constructor(status, detail = "") {
    super(`The server refused the change (HTTP ${status}). Reload the page and try again.`);
    this.status = status;
    this.detail = detail; // the body, an application/xcap-error+xml document for a 409
  }
}

class XcapDocument {
  constructor({ root, auid, xui, contentType, empty, csrfToken }) {
    this.url = `${root}/${auid}/users/${xui}/index`;
    this.contentType = contentType;
    this.empty = empty;
    this.csrfToken = csrfToken;
  }

  /** {dom, etag}, or null when the user has no such document yet. */
  async read() {
    const response = await fetch(this.url, { cache: "no-store", credentials: "same-origin" });
    if (response.status === 404) return null;
    if (!response.ok) throw new XcapError(response.status, await response.text());
    const dom = new DOMParser().parseFromString(await response.text(), "application/xml");
    return { dom, etag: response.headers.get("ETag") };
  }

  /**
   * Read, let mutate(dom) change the document, write it back; returns the DOM written.
   * `known` is a read() result the caller already has, used for the first attempt.
   */
  async update(mutate, known = undefined) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = attempt === 0 && known !== undefined ? known : await this.read();
      const dom = current ? current.dom : new DOMParser().parseFromString(this.empty, "application/xml");
      if (mutate(dom) === false && current) return dom; // nothing to change
      const headers = { "Content-Type": this.contentType, "X-CSRFToken": this.csrfToken };
      if (current) headers["If-Match"] = current.etag;
      else headers["If-None-Match"] = "*";
      const body = new XMLSerializer().serializeToString(dom);
      const response = await fetch(this.url, {
        method: "PUT", headers, body, credentials: "same-origin",
      });
      if (response.status === 412) continue;
      if (!response.ok) throw new XcapError(response.status, await response.text());
      return dom;
    }
    throw new XcapError(412, "the document kept changing");
  }
}

/** [{uri, name}] of a resource-lists document: every entry of every list, once. */
export function listEntries(dom) {
  const seen = new Map();
  for (const entry of dom.getElementsByTagNameNS(RL, "entry")) {
    const uri = entry.getAttribute("uri");
    const name = entry.getElementsByTagNameNS(RL, "display-name")[0];
    if (uri && !seen.has(uri)) seen.set(uri, { uri, name: name ? name.textContent.trim() : "" });
  }
  return Array.from(seen.values());
}

/** Add an entry to the first list (made if there is none); false if it is there already. */
export function addEntry(dom, uri) {
  if (listEntries(dom).some((e) => e.uri === uri)) return false;
  const root = dom.documentElement;
  let list = root.getElementsByTagNameNS(RL, "list")[0];
  if (!list) {
    list = root.appendChild(dom.createElementNS(RL, "list"));
    list.setAttribute("name", "contacts");
  }
  const entry = dom.createElementNS(RL, "entry");
  entry.setAttribute("uri", uri);
  list.appendChild(entry);
  return true;
}

/** Remove every entry for `uri`, from every list; false if there was none. */
export function removeEntry(dom, uri) {
  const matches = Array.from(dom.getElementsByTagNameNS(RL, "entry")).filter(
    (e) => e.getAttribute("uri") === uri,
  );
  matches.forEach((e) => e.remove());
  return matches.length > 0;
}

/** The contact list, kept in the user's resource-lists document. */
export class ContactList {
  constructor(options) {
    this.doc = new XcapDocument({
      ...options,
      auid: "resource-lists",
      contentType: "application/resource-lists+xml",
      empty:
        `<?xml version="1.0" encoding="UTF-8"?>\n` +
        `<resource-lists xmlns="${RL}"><list name="contacts"/></resource-lists>`,
    });
  }

  /** The contacts, creating the document (with an empty list) when the user has none. */
  async load() {
    const current = await this.doc.read();
    const dom = current ? current.dom : await this.doc.update(() => true, current);
    return listEntries(dom);
  }

  async add(uri) {
    return listEntries(await this.doc.update((dom) => addEntry(dom, uri)));
  }

  async remove(uri) {
    return listEntries(await this.doc.update((dom) => removeEntry(dom, uri)));
  }
}

/**
 * Put the page's decision about one watcher into a pres-rules document: its rule is the
 * one whose only condition is <identity><one id="watcher"/>, replaced by a new one. Rules
 * combine by their most permissive sub-handling (RFC 4745 §10), so an old "allow" must go
 * before a "block" can hold. Other rules (written by other clients) are kept.
 */
export function applyDecision(dom, watcher, handling) {
  const root = dom.documentElement;
  for (const rule of Array.from(root.getElementsByTagNameNS(CP, "rule"))) {
    if (onlyFor(rule, watcher)) rule.remove();
  }
  root.appendChild(makeRule(dom, watcher, handling));
  return true;
}

/** The presence rules, kept in the user's pres-rules document. */
export class PresenceRules {
  constructor(options) {
    this.doc = new XcapDocument({
      ...options,
      auid: "pres-rules",
      contentType: "application/auth-policy+xml",
      empty:
        `<?xml version="1.0" encoding="UTF-8"?>\n` +
        `<cr:ruleset xmlns:cr="${CP}" xmlns:pr="${PR}"/>`,
    });
  }

  /** "allow" or "block" this watcher; the server re-decides its subscriptions at once. */
  async decide(watcher, handling) {
    await this.doc.update((dom) => applyDecision(dom, watcher, handling));
  }
}

function onlyFor(rule, watcher) {
  const conditions = rule.getElementsByTagNameNS(CP, "conditions")[0];
  if (!conditions || conditions.children.length !== 1) return false;
  const identity = conditions.children[0];
  if (identity.namespaceURI !== CP || identity.localName !== "identity") return false;
  const ones = Array.from(identity.children);
  return (
    ones.length === 1 &&
    ones[0].namespaceURI === CP &&
    ones[0].localName === "one" &&
    ones[0].getAttribute("id") === watcher
  );
}

function makeRule(dom, watcher, handling) {
  const el = (ns, name, ...kids) => {
    const node = dom.createElementNS(ns, ns === CP ? `cr:${name}` : `pr:${name}`);
    kids.forEach((kid) => node.append(kid));
    return node;
  };
  const one = el(CP, "one");
  one.setAttribute("id", watcher);
  const rule = el(
    CP,
    "rule",
    el(CP, "conditions", el(CP, "identity", one)),
    el(CP, "actions", el(PR, "sub-handling", handling)),
  );
  rule.setAttribute("id", `web-${handling}-${crypto.randomUUID()}`);
  if (handling === "allow") {
    // RFC 5025's defaults show nothing: grant every tuple, person, device and attribute.
    rule.append(
      el(
        CP,
        "transformations",
        el(PR, "provide-services", el(PR, "all-services")),
        el(PR, "provide-persons", el(PR, "all-persons")),
        el(PR, "provide-devices", el(PR, "all-devices")),
        el(PR, "provide-all-attributes"),
      ),
    );
  }
  return rule;
}
