"""OpenAPI schema hooks (drf-spectacular)."""


def api_paths_only(endpoints):
    """Describe the JSON APIs under /api/; XCAP's catch-all resource has its own RFC."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/")]
