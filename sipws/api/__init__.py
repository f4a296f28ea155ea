"""The operations REST API under /api/admin/ (staff only): Kamailio's presence RPC over HTTP."""
