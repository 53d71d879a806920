"""The networks: model families (`family`, `families/`: STM, STCN), backbones (`backbone`,
`backbones/`), their layers, encoders, decoders and soft aggregation."""
