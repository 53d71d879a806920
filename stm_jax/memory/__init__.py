"""Space-time memory: the read (attention over memory) and the fixed-capacity memory bank."""
