"""Space-time memory: the read (attention over memory: `read`, `similarity`, `usage_read`), the
fixed-capacity memory bank (`bank`) and the memory policies (`policy`, `policies/`)."""
