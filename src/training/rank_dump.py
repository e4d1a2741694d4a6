"""Test aid (`rank_dump_dir`): what each rank trained on and the weights it ended with, one file set per rank.

A distributed test needs to see, from outside, that the ranks read disjoint samples and end with the same weights.
Every rank writes `rank{N}_samples.json` ({"rank", "group_size", "epochs": {"1": [img_id, ...], ...}}, rewritten
after each epoch, merged with an earlier run's on resume) and, at the end, `rank{N}_final.ckpt` (its trainable
parameters). Off by default; the checkpoints of the run itself are still written by rank 0 only.
"""
import json
import os

import mindspore as ms
import numpy as np

from ..fileio import atomic_path, write_json_atomic


class RankDump:
    def __init__(self, folder, rank, group_size):
        self.folder = os.path.abspath(folder)
        self.rank = rank
        self.group_size = group_size
        self.samples_path = os.path.join(self.folder, f"rank{rank}_samples.json")
        self.epochs = {}
        if os.path.isfile(self.samples_path):  # a resumed run adds its epochs to the earlier ones
            with open(self.samples_path, encoding="utf-8") as f:
                self.epochs = json.load(f).get("epochs", {})

    def add(self, epoch, img_ids):
        self.epochs.setdefault(str(epoch), []).extend(int(i) for i in np.asarray(img_ids).reshape(-1))

    def start_epoch(self, epoch):
        self.epochs[str(epoch)] = []  # an epoch run again after a resume replaces the earlier record

    def write_samples(self):
        os.makedirs(self.folder, exist_ok=True)
        write_json_atomic(self.samples_path, {"rank": self.rank, "group_size": self.group_size,
                                              "epochs": self.epochs})

    def save_weights(self, net):
        path = os.path.join(self.folder, f"rank{self.rank}_final.ckpt")
        with atomic_path(path) as tmp:
            # names relative to the detector, as in the run's own checkpoints
            ms.save_checkpoint([{"name": name, "data": param} for name, param in net.parameters_and_names()
                                if param.requires_grad], tmp)
        return path
