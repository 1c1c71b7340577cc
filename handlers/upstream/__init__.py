"""The upstream HTTP client: libcurl driven for relaying, one transfer per request."""
