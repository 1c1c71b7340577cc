"""Operations: the process state, metrics, the access log and multi-process running."""
