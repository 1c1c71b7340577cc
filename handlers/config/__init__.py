"""Configuration: each setting declared once, the site table, and their checks."""
