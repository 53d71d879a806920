"""Built-in memory policies; every module here registers its policies in
`stm_jax.memory.policy.POLICIES`."""
