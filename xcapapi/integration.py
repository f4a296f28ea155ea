"""How the XCAP server plugs into the SIP side: presence authorization and sources.

Filled in by the presence-authorization work; `XcapConfig.ready()` imports it.
"""
