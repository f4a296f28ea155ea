// What the page (static/frontend/js/) uses of SIP.js. `npm ci` bundles this with esbuild
// into static/frontend/vendor/sip.js, an ES module the page imports; nothing of SIP.js is
// kept in the repository.
export {
  Messager,
  Publisher,
  PublisherState,
  Registerer,
  RegistererState,
  Subscriber,
  SubscriptionState,
  UserAgent,
} from "sip.js";
