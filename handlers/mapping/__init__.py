"""The one mapping between backend URLs and proxy URLs, for headers, cookies and pages."""
