"""Self-supervised adaptation: a short EM fine-tuning of a model on one input's detections.

``emtrack track --adapt`` (and :func:`adapt_weights` from Python) starts from the model's
weights and takes a few optimiser steps of the training loss
(:func:`~emtrack.model.loss.em_loss`: Sinkhorn, Kalman filter, RTS smoother) on clips of the
input's own detections — no labels, seconds on a CPU — and tracks with the result. The
tracker itself never trains: pass the adapted weights as its ``model``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from emtrack.io import MotTable, SeqInfo
from emtrack.model.loss import em_loss
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.train.clips import ClipSampler, DetectionStream
from emtrack.train.config import TrainConfig

#: Optimiser steps, clips per step and step size of an adaptation.
ADAPT_STEPS = 20
ADAPT_BATCH = 8
ADAPT_LEARNING_RATE = 1e-3


def adapt_weights(
    arrays: dict[str, np.ndarray],
    detections: MotTable,
    seqinfo: SeqInfo,
    steps: int = ADAPT_STEPS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Fine-tune exported weights on one sequence's detections.

    Args:
        arrays: the model's entries (``AssociationWeights.to_arrays()``).
        detections: the input (identities, if any, are ignored).
        seqinfo: its frame rate, length and image size.
        steps: optimiser steps.
        seed: seeds the clip sampler and torch, so an adaptation is the same run to run.

    Returns:
        The adapted entries, in the same form (``AssociationWeights.from_arrays`` reads them);
        ``arrays`` itself when the sequence is too short for one clip.
    """
    config = TrainConfig()
    size = None
    if seqinfo.im_width is not None and seqinfo.im_height is not None:
        size = (float(seqinfo.im_width), float(seqinfo.im_height))
    stream = DetectionStream.from_table(
        seqinfo.name, detections, seqinfo.frame_rate, seqinfo.seq_length, size
    )
    if len(stream) < config.clip_length or len(detections) == 0:
        return arrays
    sampler = ClipSampler((stream,), config.clip_length, config.max_stride, config.max_detections)
    net, noise = _modules(arrays)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam([*net.parameters(), *noise.parameters()], ADAPT_LEARNING_RATE)
    clutter = math.log(config.clutter_scale)
    for _ in range(steps):
        try:
            batch = sampler.sample(ADAPT_BATCH, rng)
        except ValueError:  # no clip with detections in its first frame
            return arrays
        batch = type(batch)(
            batch.boxes_xyxy, batch.mask, batch.dt, batch.log_clutter_density + clutter
        ).to("cpu", torch.float32)
        out = em_loss(net, noise, batch, config.objective, config.sinkhorn_iterations)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    adapted = {**arrays, **net.export(), **noise.export()}
    return adapted


def _modules(arrays: dict[str, Any]) -> tuple[AssociationNet, NoiseModel]:
    """Torch modules holding exported weights (float32)."""
    layers = []
    k = 0
    while f"w{k}" in arrays:
        layers.append((np.asarray(arrays[f"w{k}"]), np.asarray(arrays[f"b{k}"])))
        k += 1
    net = AssociationNet(tuple(int(w.shape[1]) for w, _ in layers[:-1]))
    linears = [m for m in net.mlp if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for linear, (w, b) in zip(linears, layers, strict=True):
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        net.dustbin_logit.fill_(float(arrays["dustbin_logit"]))
    noise = NoiseModel(
        q=float(arrays["noise_q"]), r=float(arrays["noise_r"]), p_vel=float(arrays["noise_p_vel"])
    )
    return net.float(), noise.float()
