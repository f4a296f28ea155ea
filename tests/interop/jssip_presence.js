// Presence with JsSIP in a test page: window.sipTest drives one UA and records what it sees.
//
// Needs the test bundle of tests/interop/test_jssip.py, which adds to the global JsSIP the
// classes JsSIP 3.10 ships but does not export: Subscriber (RFC 6665, lib-es5/Subscriber.js),
// and RequestSender + SIPMessage, with which publish() sends a PUBLISH (RFC 3903) through
// JsSIP's own transactions and digest authentication, since JsSIP has no Publisher.
window.sipTest = (() => {
  const events = []; // [name, ...details], in the order they happened
  let ua = null;
  let subscriber = null;

  function start({ wsUrl, uri, password, timeoutMs = 5000 }) {
    return new Promise((resolve) => {
      const socket = new JsSIP.WebSocketInterface(wsUrl);
      ua = new JsSIP.UA({ sockets: [socket], uri, password, register: false });
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      ua.on('connected', () => {
        clearTimeout(timer);
        resolve('connected');
      });
      ua.start();
    });
  }

  // Resolves with 'accepted' (a dialog exists) or 'terminated:<code>'.
  function subscribe({ target, expires = 300, timeoutMs = 5000 }) {
    return new Promise((resolve) => {
      subscriber = new JsSIP.Subscriber(ua, target, 'presence', 'application/pidf+xml', {
        expires,
        contentType: 'application/pidf+xml',
      });
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      for (const name of ['pending', 'active']) {
        subscriber.on(name, () => events.push([name]));
      }
      subscriber.on('notify', (isFinal, request, body, contentType) => {
        events.push(['notify', isFinal, body, contentType]);
      });
      subscriber.on('accepted', () => {
        events.push(['accepted']);
        clearTimeout(timer);
        resolve('accepted');
      });
      subscriber.on('terminated', (code, reason) => {
        events.push(['terminated', code, reason === undefined ? null : reason]);
        clearTimeout(timer);
        resolve('terminated:' + code);
      });
      subscriber.subscribe();
    });
  }

  // Un-SUBSCRIBE; resolves with the termination code (6: the final NOTIFY arrived).
  function unsubscribe({ timeoutMs = 5000 } = {}) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      subscriber.on('terminated', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      subscriber.terminate();
    });
  }

  // One PUBLISH of the UA's own presentity; resolves with {status, etag}.
  function publish({ body = null, etag = null, expires = 300, timeoutMs = 5000 }) {
    return new Promise((resolve) => {
      const headers = ['Event: presence', `Expires: ${expires}`];
      if (etag) headers.push(`SIP-If-Match: ${etag}`);
      if (body) headers.push('Content-Type: application/pidf+xml');
      const request = new JsSIP.SIPMessage.OutgoingRequest(
        'PUBLISH', ua.configuration.uri, ua, {}, headers, body);
      const timer = setTimeout(() => resolve({ status: 'timeout' }), timeoutMs);
      const done = (status, etag = null) => {
        clearTimeout(timer);
        resolve({ status, etag });
      };
      new JsSIP.RequestSender(ua, request, {
        onRequestTimeout: () => done('request timeout'),
        onTransportError: () => done('transport error'),
        onReceiveResponse: (response) => {
          if (response.status_code >= 200) {
            done(response.status_code, response.getHeader('SIP-ETag') || null);
          }
        },
      }).send();
    });
  }

  return { events, start, subscribe, unsubscribe, publish };
})();
