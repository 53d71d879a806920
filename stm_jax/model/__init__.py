"""The STM network: backbones, encoders, key/value heads, decoder, soft aggregation."""
