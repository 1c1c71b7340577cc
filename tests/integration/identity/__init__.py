"""Sign-in against real identity servers: an OpenID Connect provider and slapd."""
