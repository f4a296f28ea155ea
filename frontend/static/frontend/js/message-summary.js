// Message waiting (RFC 3842): the text/plain-like body of message-summary NOTIFYs.
//
//   Messages-Waiting: yes
//   Message-Account: sip:*97@example.com
//   Voice-Message: 2/8 (0/1)

const COUNTS = /^(\d+)\/(\d+)(?:\s*\((\d+)\/(\d+)\))?/;

/** {waiting, account, voice: {new, old, urgentNew, urgentOld} | null}; null for no body. */
export function parseMessageSummary(body) {
  if (!body || !body.trim()) return null;
  const summary = { waiting: false, account: "", voice: null };
  for (const line of body.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "messages-waiting") summary.waiting = value.toLowerCase() === "yes";
    else if (name === "message-account") summary.account = value;
    else if (name === "voice-message") {
      const m = COUNTS.exec(value);
      if (m) {
        summary.voice = {
          new: Number(m[1]),
          old: Number(m[2]),
          urgentNew: Number(m[3] || 0),
          urgentOld: Number(m[4] || 0),
        };
      }
    }
  }
  return summary;
}
