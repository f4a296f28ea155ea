// Presence documents: PIDF (RFC 3863) with the person data model (RFC 4479) and RPID
// activities (RFC 4480). buildPidf() writes what this page publishes; readPresence()
// turns the server's composed document (every device of a contact) into one status.

const PIDF = "urn:ietf:params:xml:ns:pidf";
const DM = "urn:ietf:params:xml:ns:pidf:data-model";
const RPID = "urn:ietf:params:xml:ns:pidf:rpid";

// What the status menu offers, and how each is said in PIDF/RPID.
export const STATUSES = {
  available: { label: "Available", basic: "open", activity: null },
  away: { label: "Away", basic: "open", activity: "away" },
  busy: { label: "Busy", basic: "open", activity: "busy" },
  offline: { label: "Offline", basic: "closed", activity: null },
};

// RPID has two dozen activities; other clients publish them, we show the nearest status.
const AWAY_ACTIVITIES = new Set([
  "away", "breakfast", "dinner", "holiday", "in-transit", "meal", "permanent-absence",
  "shopping", "sleeping", "travel", "vacation",
]);
const BUSY_ACTIVITIES = new Set([
  "appointment", "busy", "meeting", "on-the-phone", "performance", "presentation",
  "steering", "worship",
]);

function escapeXml(text) {
  return String(text).replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The PIDF document for one of STATUSES' keys and a free-text note. */
export function buildPidf({ entity, tupleId, personId, status, note = "", now = new Date() }) {
  const { basic, activity } = STATUSES[status];
  const stamp = now.toISOString();
  const noteXml = note ? `<note>${escapeXml(note)}</note>` : "";
  const personNote = note ? `<dm:note>${escapeXml(note)}</dm:note>` : "";
  const activities = activity ? `<rpid:activities><rpid:${activity}/></rpid:activities>` : "";
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<presence xmlns="${PIDF}" xmlns:dm="${DM}" xmlns:rpid="${RPID}" entity="${escapeXml(entity)}">` +
    `<tuple id="${tupleId}"><status><basic>${basic}</basic></status>` +
    `<contact>${escapeXml(entity)}</contact>${noteXml}<timestamp>${stamp}</timestamp></tuple>` +
    `<dm:person id="${personId}">${activities}${personNote}` +
    `<dm:timestamp>${stamp}</dm:timestamp></dm:person>` +
    `</presence>`
  );
}

function children(parent, ns, name) {
  return Array.from(parent.children).filter((e) => e.namespaceURI === ns && e.localName === name);
}

function firstText(elements) {
  const found = elements.find((e) => e.textContent.trim());
  return found ? found.textContent.trim() : "";
}

/**
 * {status, activity, note} from a PIDF body: status is one of STATUSES' keys; activity
 * the first RPID activity (any of RFC 4480's, "" when none). An empty body (nothing
 * published, RFC 3856's neutral state) reads as offline.
 */
export function readPresence(body) {
  const offline = { status: "offline", activity: "", note: "" };
  if (!body || !body.trim()) return offline;
  const doc = new DOMParser().parseFromString(body, "application/xml");
  const root = doc.documentElement;
  if (root.localName !== "presence" || root.namespaceURI !== PIDF) return offline;

  const tuples = children(root, PIDF, "tuple");
  const persons = children(root, DM, "person");
  const basics = tuples.flatMap((t) =>
    children(t, PIDF, "status").flatMap((s) => children(s, PIDF, "basic")),
  );
  const open = basics.some((b) => b.textContent.trim() === "open");
  const activity =
    persons
      .flatMap((p) => children(p, RPID, "activities"))
      .flatMap((a) => Array.from(a.children))
      .map((e) => e.localName)
      .find((name) => name !== "note" && name !== "unknown") || "";
  const note =
    firstText(persons.flatMap((p) => children(p, DM, "note"))) ||
    firstText(tuples.flatMap((t) => children(t, PIDF, "note"))) ||
    firstText(children(root, PIDF, "note"));

  let status = "offline";
  if (open) {
    status = "available";
    if (AWAY_ACTIVITIES.has(activity)) status = "away";
    if (BUSY_ACTIVITIES.has(activity)) status = "busy";
  }
  return { status, activity, note };
}
