"""A PyTorch reference of STCN (Cheng et al., NeurIPS 2021, NCHW), written from the facts of its
public code for parity tests: the released checkpoint's module names (`key_encoder` with `res2`,
`layer2`, `layer3`; `key_proj.key_proj`; `key_comp`; `value_encoder` with `layer1..3` and `fuser`;
`decoder`), so `state_dict()` holds every official key, and its published inference loop
(`run_video`: top-k 20, a memory frame every 5 frames, the previous frame not read, pad to 16 after
ImageNet normalisation, soft aggregation) and its YouTube-VOS loop (`run_video_youtube`: one bank
per object from the frame it is given, the mem_every count restarted at every such frame). Backbones come from tests/torch_stm_reference.py (no
torchvision download); the value encoder's ResNet has a bias on every conv, as STCN's does.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.torch_stm_reference import PRESETS, make_resnet_layers, pad_divide_by

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def backbone_channels(backbone):
    """(c2, c3, c4): channels of layer1..3 of a preset."""
    block, _, widths, _ = PRESETS[backbone]
    return tuple(w * block.expansion for w in widths)


class KeyEncoder(nn.Module):
    """ResNet to layer3; STCN names layer1 `res2` and keeps `layer2`, `layer3`."""

    def __init__(self, backbone):
        super().__init__()
        (self.res2, self.layer2, self.layer3), stem = make_resnet_layers(backbone)
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1)

    def forward(self, frame):
        x = self.maxpool(F.relu(self.bn1(self.conv1(frame))))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        return self.layer3(f8), f8, f4


class KeyProjection(nn.Module):
    def __init__(self, indim, keydim):
        super().__init__()
        self.key_proj = nn.Conv2d(indim, keydim, 3, padding=1)
        nn.init.orthogonal_(self.key_proj.weight.data)
        nn.init.zeros_(self.key_proj.bias.data)

    def forward(self, x):
        return self.key_proj(x)


class ResBlock(nn.Module):
    """conv2(relu(conv1(relu(x)))) + x, with a 3x3 `downsample` conv on x when the width changes."""

    def __init__(self, indim, outdim=None):
        super().__init__()
        outdim = outdim or indim
        self.downsample = None if indim == outdim else nn.Conv2d(indim, outdim, 3, padding=1)
        self.conv1 = nn.Conv2d(indim, outdim, 3, padding=1)
        self.conv2 = nn.Conv2d(outdim, outdim, 3, padding=1)

    def forward(self, x):
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        return (x if self.downsample is None else self.downsample(x)) + r


class ChannelGate(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels)
        )

    def forward(self, x):
        # Global pools as window-sized pools, the ops STCN uses (a mean over axes rounds
        # differently, and soft aggregation near saturated probabilities magnifies last-bit
        # differences).
        window = tuple(x.shape[2:])
        average = self.mlp(F.avg_pool2d(x, window, stride=window))
        maximum = self.mlp(F.max_pool2d(x, window, stride=window))
        return x * torch.sigmoid(average + maximum)[:, :, None, None]


class SpatialConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        return self.conv(x)


class SpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = SpatialConv()

    def forward(self, x):
        pooled = torch.cat([torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.ChannelGate = ChannelGate(channels)
        self.SpatialGate = SpatialGate()

    def forward(self, x):
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    def __init__(self, indim, outdim):
        super().__init__()
        self.block1 = ResBlock(indim, outdim)
        self.attention = CBAM(outdim)
        self.block2 = ResBlock(outdim, outdim)

    def forward(self, value_f16, key_f16):
        x = self.block1(torch.cat([value_f16, key_f16], dim=1))
        return self.block2(x + self.attention(x))


class ValueEncoder(nn.Module):
    """ResNet (every conv with a bias) on [image, mask, others], fused with the key encoder's f16."""

    def __init__(self, backbone, key_channels, value_dim, in_channels=5):
        super().__init__()
        (self.layer1, self.layer2, self.layer3), stem = make_resnet_layers(backbone, bias=True)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=True)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.fuser = FeatureFusionBlock(backbone_channels(backbone)[2] + key_channels, value_dim)

    def forward(self, image, key_f16, mask, others):
        x = torch.cat([image, mask, others], dim=1)
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fuser(x, key_f16)


class UpsampleBlock(nn.Module):
    def __init__(self, skip_c, up_c, out_c):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_c, up_c, 3, padding=1)
        self.out_conv = ResBlock(up_c, out_c)

    def forward(self, skip, up):
        x = self.skip_conv(skip)
        x = x + F.interpolate(up, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out_conv(x)


class Decoder(nn.Module):
    def __init__(self, in_channels, c3, c2, dim):
        super().__init__()
        self.compress = ResBlock(in_channels, 2 * dim)
        self.up_16_8 = UpsampleBlock(c3, 2 * dim, dim)
        self.up_8_4 = UpsampleBlock(c2, dim, dim)
        self.pred = nn.Conv2d(dim, 1, 3, padding=1)

    def forward(self, f16, f8, f4):
        x = self.up_8_4(f4, self.up_16_8(f8, self.compress(f16)))
        x = self.pred(F.relu(x))
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


def aggregate(prob):
    """STM's soft aggregation with the background kept: [k, ...] -> [k + 1, ...] probabilities."""
    em = torch.cat([torch.prod(1 - prob, dim=0, keepdim=True), prob], 0).clamp(1e-7, 1 - 1e-7)
    return F.softmax(torch.log(em / (1 - em)), dim=0)


def _l2_affinity(memory_key, query_key):
    memory, query = memory_key.flatten(start_dim=2), query_key.flatten(start_dim=2)
    squared = memory.pow(2).sum(1).unsqueeze(2)
    return (2 * memory.transpose(1, 2) @ query - squared) / math.sqrt(memory.shape[1])


def top_k_read(memory_keys, memory_values, query_key, top_k):
    """STCN's read: memory_keys [1, Dk, N], memory_values [k, Dv, N], query_key [1, Dk, h, w].

    Affinity (2 mk.qk - |mk|^2) / sqrt(Dk), softmax over the top_k memory positions per query
    position, computed as STCN does (exp of the kept values, no max subtracted). `min(top_k, N)`:
    STCN's torch.topk needs N >= top_k, true at every real frame size."""
    k, dv, _ = memory_values.shape
    h, w = query_key.shape[-2:]
    affinity = _l2_affinity(memory_keys, query_key)
    if top_k:
        values, indices = torch.topk(affinity, k=min(top_k, affinity.shape[1]), dim=1)
        weights = values.exp()
        weights = weights / weights.sum(dim=1, keepdim=True)
        affinity = torch.zeros_like(affinity).scatter_(1, indices, weights)
    else:
        affinity = F.softmax(affinity, dim=1)
    return torch.bmm(memory_values, affinity.expand(k, -1, -1)).view(k, dv, h, w)


class STCN(nn.Module):
    def __init__(
        self,
        backbone="resnet50",
        value_backbone="resnet18",
        key_dim=64,
        value_dim=512,
        decoder_dim=256,
    ):
        super().__init__()
        c2, c3, c4 = backbone_channels(backbone)
        self.key_encoder = KeyEncoder(backbone)
        self.value_encoder = ValueEncoder(value_backbone, c4, value_dim)
        self.key_proj = KeyProjection(c4, key_dim)
        self.key_comp = nn.Conv2d(c4, value_dim, 3, padding=1)
        self.decoder = Decoder(2 * value_dim, c3, c2, decoder_dim)

    def encode_key(self, frame):
        """frame [1, 3, H, W] normalised, padded -> (k16, f16_thin, f16, f8, f4)."""
        f16, f8, f4 = self.key_encoder(frame)
        return self.key_proj(f16), self.key_comp(f16), f16, f8, f4

    def encode_value(self, frame, key_f16, masks):
        """masks [k, 1, H, W] -> values [k, Dv, h, w]; others = the plain sum of the other masks."""
        k = masks.shape[0]
        others = torch.zeros_like(masks)
        if k > 1:
            others = torch.stack([sum(masks[j] for j in range(k) if j != i) for i in range(k)])
        frames = frame.expand(k, -1, -1, -1)
        return self.value_encoder(frames, key_f16.expand(k, -1, -1, -1), masks, others)

    def decode(self, readout, query_value, f8, f4):
        """readout [k, Dv, h, w] -> foreground probabilities [k, 1, H, W] (sigmoid)."""
        k = readout.shape[0]
        memory_out = torch.cat([readout, query_value.expand(k, -1, -1, -1)], dim=1)
        return torch.sigmoid(self.decoder(memory_out, f8, f4))


def normalise_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> ImageNet-normalised [T, 3, H, W] (STCN's ToTensor + Normalize)."""
    x = torch.from_numpy(frames.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def one_hot(labels: np.ndarray, num_objects: int) -> torch.Tensor:
    """[H, W] ids -> [k, 1, H, W] float masks of objects 1..k."""
    ids = torch.arange(1, num_objects + 1).view(-1, 1, 1)
    return (torch.from_numpy(labels.astype(np.int64))[None] == ids).float()[:, None]


@torch.no_grad()
def run_video(model, frames, first_labels, num_objects, top_k=20, mem_every=5, parts=None):
    """STCN's DAVIS protocol over a whole video (eval_davis.py defaults).

    Frame 0's memory comes from its soft-aggregated one-hot mask; frame t is read against frame 0 and
    every frame f with f % mem_every == 0, 1 <= f < t (the previous frame is not read), each memorised
    with its aggregated probabilities right after it is segmented; the last frame is not memorised.

    Args:
      model: an `STCN` in eval mode.
      frames: uint8 [T, H, W, 3]; first_labels: [H, W] ids 0..num_objects.
      parts: a dict to fill, for frames 1..T-1, with the memory frames each read ('memory_frames')
        and its readout [k, Dv, h, w] ('readout').
    Returns:
      float32 [T, num_objects + 1, H, W] probabilities (background first), cropped to H, W.
    """
    num_frames = frames.shape[0]
    images, pad = pad_divide_by([normalise_frames(frames)], 16, frames.shape[1:3])
    images = images[0]
    (masks,), _ = pad_divide_by([one_hot(first_labels, num_objects)], 16, frames.shape[1:3])
    probs = [aggregate(masks)]
    key, _, f16, _, _ = model.encode_key(images[0:1])
    memory_keys = key.flatten(start_dim=2)
    memory_values = model.encode_value(images[0:1], f16, probs[0][1:]).flatten(start_dim=2)
    memory_frames = [0]
    for t in range(1, num_frames):
        key, query_value, f16, f8, f4 = model.encode_key(images[t : t + 1])
        readout = top_k_read(memory_keys, memory_values, key, top_k)
        probs.append(aggregate(model.decode(readout, query_value, f8, f4)))
        if parts is not None:
            parts.setdefault("memory_frames", []).append(list(memory_frames))
            parts.setdefault("readout", []).append(readout)
        if t != num_frames - 1 and t % mem_every == 0:
            value = model.encode_value(images[t : t + 1], f16, probs[-1][1:])
            memory_keys = torch.cat([memory_keys, key.flatten(start_dim=2)], 2)
            memory_values = torch.cat([memory_values, value.flatten(start_dim=2)], 2)
            memory_frames.append(t)
    out = torch.stack(probs)[:, :, 0]  # [T, k + 1, Hp, Wp]
    height, width = frames.shape[1:3]
    return out[:, :, pad[2] : pad[2] + height, pad[0] : pad[0] + width].numpy()


@torch.no_grad()
def run_video_youtube(model, frames, given, num_objects, top_k=20, mem_every=5, parts=None):
    """STCN's YouTube-VOS protocol over a whole video (eval_youtube.py / inference_core_yv.py).

    The video is a series of passes, one from each frame where objects are given to the next such
    frame (that frame included), the last to the end of the video. At the start of a pass, the given
    masks merge with what the previous pass predicted there (every channel is zeroed under the given
    objects, the given objects' channels become their masks, then soft aggregation over all
    objects), and the frame is memorised, with those probabilities, in the bank of every object
    given so far; a new object's bank starts there. Within a pass a frame is a memory frame when it
    is >= mem_every frames after the pass's last memory frame (the pass's first frame to begin
    with); it is memorised unless it ends the pass. Each object reads its own bank (its own top-k),
    and the objects given so far are soft-aggregated (the others stay 0).

    Args:
      model: an `STCN` in eval mode.
      frames: uint8 [T, H, W, 3]; given: {frame index: [H, W] ids of the objects given there (0
        elsewhere)}; ids 1..num_objects.
      parts: a dict to fill with each object's memory frames at the end ('memory_frames').
    Returns:
      float32 [T, num_objects + 1, H, W] probabilities (background first), cropped to H, W; frames
      before the first given frame are background 1e-7 and objects 0, as STCN leaves them.
    """
    num_frames, height, width = frames.shape[:3]
    images, pad = pad_divide_by([normalise_frames(frames)], 16, (height, width))
    images = images[0]
    prob = torch.zeros((num_objects + 1, num_frames, 1, *images.shape[-2:]))
    prob[0] = 1e-7
    enabled, banks = [], {}  # banks: object -> [keys [1, Dk, N], values [1, Dv, N], frames]

    def memorise(t, key, value):
        for j, obj in enumerate(enabled):
            bank = banks.setdefault(obj, [key[:, :, :0], value[:1, :, :0], []])
            bank[0] = torch.cat([bank[0], key], 2)
            bank[1] = torch.cat([bank[1], value[j : j + 1]], 2)
            bank[2].append(t)

    starts = sorted(given)
    for i, start in enumerate(starts):
        end = starts[i + 1] + 1 if i + 1 < len(starts) else num_frames
        ids = [int(o) for o in np.unique(given[start]) if o]
        (mask,), _ = pad_divide_by([one_hot(given[start], num_objects)], 16, (height, width))
        enabled.extend(ids)
        region = mask.sum(0) > 0.5  # [1, Hp, Wp]
        merged = prob[:, start] * ~region
        for obj in ids:
            merged[obj] = mask[obj - 1]
        prob[:, start] = aggregate(merged[1:])
        key, _, f16, _, _ = model.encode_key(images[start : start + 1])
        values = model.encode_value(images[start : start + 1], f16, prob[enabled, start])
        memorise(start, key.flatten(start_dim=2), values.flatten(start_dim=2))
        last = start
        for t in range(start + 1, end):
            memory_frame = t - last >= mem_every
            key, query_value, f16, f8, f4 = model.encode_key(images[t : t + 1])
            foreground = torch.cat(
                [
                    model.decode(
                        top_k_read(banks[o][0], banks[o][1], key, top_k), query_value, f8, f4
                    )
                    for o in enabled
                ]
            )
            out = aggregate(foreground)
            prob[0, t] = out[0]
            for j, obj in enumerate(enabled):
                prob[obj, t] = out[j + 1]
            if t != end - 1 and memory_frame:
                values = model.encode_value(images[t : t + 1], f16, out[1:])
                memorise(t, key.flatten(start_dim=2), values.flatten(start_dim=2))
                last = t
    if parts is not None:
        parts["memory_frames"] = {obj: bank[2] for obj, bank in banks.items()}
    out = prob[:, :, 0].transpose(0, 1)  # [T, k + 1, Hp, Wp]
    return out[:, :, pad[2] : pad[2] + height, pad[0] : pad[0] + width].numpy()


def randomize(model: nn.Module, generator: torch.Generator, bias_scale: float = 0.05) -> None:
    """Non-trivial BN statistics and affine parameters, random conv / linear biases (STCN's value
    encoder biases start at zero, which would hide a bias dropped by the converter)."""
    from tests.torch_stm_reference import randomize_batchnorm

    randomize_batchnorm(model, generator)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * bias_scale)


@torch.no_grad()
def calibrate(model: STCN, mask_gain: float = 30.0, affinity_std: float = 3.0, logit_std=2.0):
    """Makes random weights exercise what parity must check, measured on a probe frame pair:
    the value stem's mask filters x `mask_gain` (random filters on two [0, 1] channels beside three
    normalised RGB ones leave the objects' values nearly equal); `key_proj` scaled so affinities
    have std `affinity_std` (a near-flat affinity makes the top-k read an average); `decoder.pred`
    rescaled so the foreground logits have mean 0 and std `logit_std` (not saturated, not flat)."""
    from tests.parity_utils import random_video

    model.value_encoder.conv1.weight[:, 3:] *= mask_gain
    frames, labels = random_video(2, 64, 80, 2, seed=123)
    images = normalise_frames(frames)
    key, _, f16, _, _ = model.encode_key(images[0:1])
    key_1 = model.encode_key(images[1:2])[0]
    gain = math.sqrt(affinity_std / _l2_affinity(key, key_1).std().item())
    model.key_proj.key_proj.weight.mul_(gain)
    model.key_proj.key_proj.bias.mul_(gain)
    key, _, f16, _, _ = model.encode_key(images[0:1])
    values = model.encode_value(images[0:1], f16, one_hot(labels, 2)).flatten(start_dim=2)
    key_1, query_value, _, f8, f4 = model.encode_key(images[1:2])
    readout = top_k_read(key.flatten(start_dim=2), values, key_1, top_k=20)
    memory_out = torch.cat([readout, query_value.expand(2, -1, -1, -1)], dim=1)
    logits = model.decoder(memory_out, f8, f4)
    scale = logit_std / logits.std().item()
    model.decoder.pred.weight.mul_(scale)
    model.decoder.pred.bias.mul_(scale)
    model.decoder.pred.bias.sub_(scale * logits.mean().item())


def make_stcn(seed=0, randomized=True, **sizes) -> STCN:
    """A seeded reference STCN in eval mode (`sizes`: STCN's keyword arguments). `randomized`:
    non-trivial BN and biases, then `calibrate`d."""
    torch.manual_seed(seed)
    model = STCN(**sizes).eval()
    if randomized:
        randomize(model, torch.Generator().manual_seed(seed))
        calibrate(model)
    return model


def stcn_state_dict(model: STCN, prefix: str = "", stage0: bool = False) -> dict:
    """The model's state dict as numpy arrays, optionally 'module.'-prefixed or as a stage-0
    (single-object) checkpoint, whose value conv1 lacks the others-mask channel."""
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    if stage0:
        state["value_encoder.conv1.weight"] = state["value_encoder.conv1.weight"][:, :4]
    return {prefix + k: v for k, v in state.items()}


def write_stcn_pth(path, seed=0, prefix="", stage0=False, **sizes):
    """Writes a random-weight reference STCN's state dict as a `.pth` (STCN's layout); returns the
    model it came from."""
    model = make_stcn(seed, **sizes)
    state = stcn_state_dict(model, prefix, stage0)
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
    return model
