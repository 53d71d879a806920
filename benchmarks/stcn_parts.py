"""Where an STCN frame's time goes: each part of the model timed alone, ours (one jit per part) vs the
PyTorch reference with identical weights, and one decoder convolution timed alone on both sides.

Run: python -m benchmarks.stcn_parts [--height 480 --width 854] [--objects 2] [--threads N]

Parts, at the padded size (480x854 pads to 480x864): the key encoder with key_proj and key_comp
(every frame), the decoder for all objects (every frame), the value encoder with its fuser (memory
frames only). The convolution line is the decoder's 1/4-scale 3x3 convolution (256 -> 256 channels,
one image per object), XLA's `conv_general_dilated` vs `torch.nn.functional.conv2d`, in GFLOP/s:
when both sides run it at the same rate, which is near the float32 peak of the cores, a frame made
of such convolutions cannot be much faster on one side. Each time is the best of `--repeats`.
"""

import argparse
import os

import jax
import numpy as np
import torch

from benchmarks.frame_speed import make_stcn_reference
from benchmarks.memory_read import best_time
from stm_jax.model.family import FAMILIES
from stm_jax.model.padding import Padding


def ours_parts(config, variables, x, readout, masks, repeats):
    module = FAMILIES.get(config.family)(config).module()
    encode = jax.jit(lambda v, x: module.apply(v, x, method="encode_query"))
    decode = jax.jit(lambda v, r, q: module.apply(v, r, q, method="decode_logits"))
    memorize = jax.jit(lambda v, x, m, q: module.apply(v, x, m, m, q, method="encode_memory"))
    query = encode(variables, x)
    return {
        "key encoder + key_proj + key_comp": best_time(encode, variables, x, repeats=repeats),
        "decoder, all objects": best_time(decode, variables, readout, query, repeats=repeats),
        "value encoder + fuser (memory frames)": best_time(
            memorize, variables, x, masks, query, repeats=repeats
        ),
    }


@torch.no_grad()
def torch_parts(model, x, readout, masks, repeats):
    frame = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    readout = torch.from_numpy(readout[0]).permute(0, 3, 1, 2).contiguous()  # [O, Dv, h, w]
    masks = torch.from_numpy(masks[0])[:, None]  # [O, 1, H, W]
    _, query_value, f16, f8, f4 = model.encode_key(frame)
    return {
        "key encoder + key_proj + key_comp": best_time(model.encode_key, frame, repeats=repeats),
        "decoder, all objects": best_time(
            model.decode, readout, query_value, f8, f4, repeats=repeats
        ),
        "value encoder + fuser (memory frames)": best_time(
            model.encode_value, frame, f16, masks, repeats=repeats
        ),
    }


def conv_rates(batch, height, width, channels, repeats):
    """GFLOP/s of one 3x3, stride-1, padding-1 convolution on each side."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, height, width, channels)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, channels, channels)).astype(np.float32) * 0.02
    conv = jax.jit(
        lambda x, k: jax.lax.conv_general_dilated(
            x, k, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    )
    ours = best_time(conv, jax.device_put(x), jax.device_put(kernel), repeats=repeats)
    x_torch = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    k_torch = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
    with torch.no_grad():
        reference = best_time(
            torch.nn.functional.conv2d, x_torch, k_torch, None, 1, 1, repeats=repeats
        )
    flop = 2 * batch * height * width * channels * channels * 9
    return flop / ours / 1e9, flop / reference / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, config, variables = make_stcn_reference(seed=0)
    variables = jax.device_put(variables)
    height, width = Padding.for_size(args.height, args.width).padded_shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, height, width, 3)).astype(np.float32)
    readout = rng.standard_normal(
        (1, args.objects, height // 16, width // 16, config.value_dim)
    ).astype(np.float32)
    masks = rng.random((1, args.objects, height, width)).astype(np.float32)
    ours = ours_parts(config, variables, x, readout, masks, args.repeats)
    reference = torch_parts(model, x, readout, masks, args.repeats)
    print(
        f"stcn parts at {height}x{width} (padded), {args.objects} objects, float32, "
        f"torch with {torch.get_num_threads()} threads, best of {args.repeats}"
    )
    for part in ours:
        print(
            f"{part}: ours {ours[part]:.3f} s, pytorch {reference[part]:.3f} s, "
            f"ratio {reference[part] / ours[part]:.2f}x"
        )
    ours_rate, torch_rate = conv_rates(
        args.objects, height // 4, width // 4, config.decoder_dim, args.repeats
    )
    print(
        f"decoder 3x3 conv {config.decoder_dim}->{config.decoder_dim} on "
        f"{args.objects}x{height // 4}x{width // 4}: ours {ours_rate:.0f} GFLOP/s, "
        f"pytorch {torch_rate:.0f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
