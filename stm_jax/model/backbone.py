"""The backbone registry (`model.backbone`): image feature extractors at strides 4, 8 and 16.

An entry is an object with
* `channels`: (c2, c3, c4), the output channels at strides 4, 8 and 16;
* `stem(x, side_inputs, dtype, side_init, use_bias=False, conv1_init=...)`: stride-4 features of
  x [..., H, W, C] (any C, any leading axes). Each `side_inputs` entry (name -> [B, O, H, W, c])
  goes through its own stem-shaped layer called `name` and is added before the stem's normalisation
  (STM's memory encoder adds the object mask and the other objects' mask this way); with side
  inputs the result has the object axis: [B, O, h, w, C]. `use_bias` / `conv1_init`: the first
  conv has a bias / starts as named (`stm_jax.model.layers.CONV_INITS`; STCN's value encoder
  reads RGB + masks through one 5-channel conv with a bias);
* `stages(x, dtype, use_bias=False) -> (r4, r3, r2)`: the stride-16, 8 and 4 features after the
  stem (`use_bias`: every conv has a bias, as in STCN's value encoder);
* `torchvision_name(path)`: the torchvision state-dict name of a parameter path under the encoder
  that holds the backbone (None for layers ImageNet weights do not hold), used to start training
  from ImageNet weights; return None everywhere for a backbone with no such weights.
`stem` and `stages` are called inside the encoder's `@nn.compact` method, so the layers they create
are the encoder's own (their parameter names are the backbone's business: `conv1`, `bn1`,
`backbone/res2_0/...` for the ResNets, matching the official checkpoints). Layers carry their own
initialisers (`stm_jax.model.layers.CONV_INITS`).

Built-in entries live in `stm_jax/model/backbones/` (every module there is imported); register your
own with `@BACKBONES.register("name")` in a file of that folder or in a plugin module.
"""

from __future__ import annotations

from stm_jax.registry import Registry

BACKBONES = Registry("backbone", "model.backbone", builtins=("stm_jax.model.backbones.*",))
