"""The XCAP server (RFC 4825): users' rules, buddy lists and presence documents over HTTP."""
