"""The front door and routing: limits, who may come in, and which site a request names.

Decisions here return values; the handlers answer.
"""
