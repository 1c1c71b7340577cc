"""The relay: the handler of a proxied request and the object that carries it."""
