"""A PyTorch reference of the official STM model (spec A, NCHW), written from the spec for parity tests.

It mirrors the official `model.py` structure and state-dict names (Encoder_M, Encoder_Q, KV_M_r4, KV_Q_r4,
Decoder), including its per-object decoder, `pad_divide_by`, `Soft_aggregation` and the memory read,
so our converter can be exercised on its `state_dict()`. Backbones are built here (no torchvision
download); `make_resnet_layers` reproduces torchvision's v1.5 Bottleneck/BasicBlock naming.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, bias=False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=bias)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, bias=False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


PRESETS = {
    "resnet50": (Bottleneck, (3, 4, 6), (64, 128, 256), 64),
    "resnet18": (BasicBlock, (2, 2, 2), (64, 128, 256), 64),
    "tiny": (BasicBlock, (1, 1, 1), (8, 16, 32), 8),
}


def make_resnet_layers(backbone, bias=False):
    """[layer1, layer2, layer3] of a torchvision-layout ResNet and the stem width; `bias`: every conv
    has a bias (STCN's value encoder)."""
    block, counts, widths, stem = PRESETS[backbone]
    layers, inplanes = [], stem
    for stage, (count, planes) in enumerate(zip(counts, widths)):
        stride = 1 if stage == 0 else 2
        blocks = []
        for index in range(count):
            s = stride if index == 0 else 1
            downsample = None
            if index == 0 and (s != 1 or inplanes != planes * block.expansion):
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * block.expansion, 1, s, bias=bias),
                    nn.BatchNorm2d(planes * block.expansion),
                )
            blocks.append(block(inplanes, planes, s, downsample, bias))
            inplanes = planes * block.expansion
        layers.append(nn.Sequential(*blocks))
    return layers, stem


class Encoder_M(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        (self.res2, self.res3, self.res4), stem = make_resnet_layers(backbone)
        self.conv1_m = nn.Conv2d(1, stem, 7, 2, 3, bias=False)
        self.conv1_o = nn.Conv2d(1, stem, 7, 2, 3, bias=False)
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.register_buffer("mean", torch.FloatTensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.FloatTensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, in_f, in_m, in_o):
        f = (in_f - self.mean) / self.std
        m = torch.unsqueeze(in_m, dim=1).float()
        o = torch.unsqueeze(in_o, dim=1).float()
        x = self.conv1(f) + self.conv1_m(m) + self.conv1_o(o)
        x = self.maxpool(F.relu(self.bn1(x)))
        r2 = self.res2(x)
        r3 = self.res3(r2)
        return self.res4(r3)


class Encoder_Q(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        (self.res2, self.res3, self.res4), stem = make_resnet_layers(backbone)
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.register_buffer("mean", torch.FloatTensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.FloatTensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, in_f):
        f = (in_f - self.mean) / self.std
        x = self.maxpool(F.relu(self.bn1(self.conv1(f))))
        r2 = self.res2(x)
        r3 = self.res3(r2)
        r4 = self.res4(r3)
        return r4, r3, r2


class ResBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x):
        r = self.conv1(F.relu(x))
        r = self.conv2(F.relu(r))
        return x + r


class Refine(nn.Module):
    def __init__(self, inplanes, planes):
        super().__init__()
        self.convFS = nn.Conv2d(inplanes, planes, 3, 1, 1)
        self.ResFS = ResBlock(planes)
        self.ResMM = ResBlock(planes)

    def forward(self, f, pm):
        s = self.ResFS(self.convFS(f))
        m = s + F.interpolate(pm, scale_factor=2, mode="bilinear", align_corners=False)
        return self.ResMM(m)


class Decoder(nn.Module):
    def __init__(self, in4, in3, in2, mdim):
        super().__init__()
        self.convFM = nn.Conv2d(in4, mdim, 3, 1, 1)
        self.ResMM = ResBlock(mdim)
        self.RF3 = Refine(in3, mdim)
        self.RF2 = Refine(in2, mdim)
        self.pred2 = nn.Conv2d(mdim, 2, 3, 1, 1)

    def forward(self, r4, r3, r2):
        m4 = self.ResMM(self.convFM(r4))
        m3 = self.RF3(r3, m4)
        m2 = self.RF2(r2, m3)
        p2 = self.pred2(F.relu(m2))
        return F.interpolate(p2, scale_factor=4, mode="bilinear", align_corners=False)


class KeyValue(nn.Module):
    def __init__(self, indim, keydim, valdim):
        super().__init__()
        self.Key = nn.Conv2d(indim, keydim, 3, 1, 1)
        self.Value = nn.Conv2d(indim, valdim, 3, 1, 1)

    def forward(self, x):
        return self.Key(x), self.Value(x)


def memory_read(m_in, m_out, q_in, q_out):
    """Official Memory.forward: m_in [B, Dk, T, H, W], m_out [B, Dv, T, H, W], q_in [B, Dk, H, W]."""
    B, D_e, T, H, W = m_in.size()
    _, D_o, _, _, _ = m_out.size()
    mi = m_in.view(B, D_e, T * H * W)
    mi = torch.transpose(mi, 1, 2)
    qi = q_in.view(B, D_e, H * W)
    p = torch.bmm(mi, qi) / math.sqrt(D_e)
    p = F.softmax(p, dim=1)
    mo = m_out.view(B, D_o, T * H * W)
    mem = torch.bmm(mo, p).view(B, D_o, H, W)
    return torch.cat([mem, q_out], dim=1)


def pad_divide_by(in_list, d, in_size):
    h, w = in_size
    new_h = h + d - h % d if h % d > 0 else h
    new_w = w + d - w % d if w % d > 0 else w
    lh, uh = int((new_h - h) / 2), int(new_h - h) - int((new_h - h) / 2)
    lw, uw = int((new_w - w) / 2), int(new_w - w) - int((new_w - w) / 2)
    pad_array = (int(lw), int(uw), int(lh), int(uh))
    return [F.pad(x, pad_array) for x in in_list], pad_array


class STM(nn.Module):
    def __init__(self, backbone="resnet50", key_dim=128, value_dim=512, mdim=256, num_slots=11):
        super().__init__()
        _, _, widths, _ = PRESETS[backbone]
        expansion = PRESETS[backbone][0].expansion
        c2, c3, c4 = (w * expansion for w in widths)
        self.K = num_slots
        self.Encoder_M = Encoder_M(backbone)
        self.Encoder_Q = Encoder_Q(backbone)
        self.KV_M_r4 = KeyValue(c4, key_dim, value_dim)
        self.KV_Q_r4 = KeyValue(c4, key_dim, value_dim)
        self.Decoder = Decoder(2 * value_dim, c3, c2, mdim)

    def Pad_memory(self, mems, num_objects, K):
        pad_mems = []
        for mem in mems:
            # On the input's device and dtype (the official code is CPU/float32 here; a GPU
            # benchmark runs this reference on the GPU, in bfloat16 autocast).
            pad_mem = mem.new_zeros(1, K, mem.size()[1], 1, mem.size()[2], mem.size()[3])
            pad_mem[0, 1 : num_objects + 1, :, 0] = mem
            pad_mems.append(pad_mem)
        return pad_mems

    def memorize(self, frame, masks, num_objects):
        _, K, H, W = masks.shape
        (frame, masks), pad = pad_divide_by([frame, masks], 16, (frame.size()[2], frame.size()[3]))
        B_list = {"f": [], "m": [], "o": []}
        for o in range(1, num_objects + 1):
            B_list["f"].append(frame)
            B_list["m"].append(masks[:, o])
            B_list["o"].append(
                (
                    torch.sum(masks[:, 1:o], dim=1)
                    + torch.sum(masks[:, o + 1 : num_objects + 1], dim=1)
                ).clamp(0, 1)
            )
        B_ = {arg: torch.cat(v, dim=0) for arg, v in B_list.items()}
        r4 = self.Encoder_M(B_["f"], B_["m"], B_["o"])
        k4, v4 = self.KV_M_r4(r4)
        return self.Pad_memory([k4, v4], num_objects=num_objects, K=K)

    def soft_aggregation(self, ps, K):
        num_objects, H, W = ps.shape
        em = ps.new_zeros(1, K, H, W)
        em[0, 0] = torch.prod(1 - ps, dim=0)
        em[0, 1 : num_objects + 1] = ps
        em = torch.clamp(em, 1e-7, 1 - 1e-7)
        return torch.log(em / (1 - em))

    def segment(self, frame, keys, values, num_objects, return_parts=False):
        [frame], pad = pad_divide_by([frame], 16, (frame.size()[2], frame.size()[3]))
        r4, r3, r2 = self.Encoder_Q(frame)
        k4, v4 = self.KV_Q_r4(r4)
        k4e, v4e = k4.expand(num_objects, -1, -1, -1), v4.expand(num_objects, -1, -1, -1)
        r3e, r2e = r3.expand(num_objects, -1, -1, -1), r2.expand(num_objects, -1, -1, -1)
        m4 = memory_read(keys[0, 1 : num_objects + 1], values[0, 1 : num_objects + 1], k4e, v4e)
        logits = self.Decoder(m4, r3e, r2e)
        ps = F.softmax(logits, dim=1)[:, 1]
        logit = self.soft_aggregation(ps, self.K)
        if pad[2] + pad[3] > 0:
            logit = logit[:, :, pad[2] : -pad[3], :]
        if pad[0] + pad[1] > 0:
            logit = logit[:, :, :, pad[0] : -pad[1]]
        if return_parts:
            return logit, {"k4": k4, "v4": v4, "r3": r3, "r2": r2, "m4": m4, "logits": logits}
        return logit


def randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial BN statistics and affine parameters (so frozen BN is really exercised)."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            module.weight.data.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
