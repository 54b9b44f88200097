"""Run in a subprocess against tests/fake_gpus.py's cluster: start actors asking for whole and fractional
GPUs as the driver starts them (cluster.driver.actor_factory), argv[2] being JSON [[label, actors,
gpus_per_actor], ...]; print, as JSON, what each actor reported when it started and what it saw when
it evaluated (Ray's GPU ids, CUDA_VISIBLE_DEVICES). All of a case's actors are up at once, so Ray
must place them side by side. The evaluator is defined here, in __main__, so Ray ships it by value."""

import json
import os
import sys

from cluster.driver import actor_factory
from cluster.session import ActorRequest, ray_session


class Where:
    def __init__(self, problem):
        self.problem = problem

    def evaluate(self):
        import ray
        import torch

        return {"gpu_ids": [str(g) for g in ray.get_gpu_ids()], "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "torch_sees_cuda": torch.cuda.is_available()}


out = {}
with ray_session(sys.argv[1]) as ray:
    for label, actors, gpus in json.loads(sys.argv[2]):
        start = actor_factory(Where, ray.put(None), ActorRequest(actors, 0.25, gpus, require_cuda=False))
        handles = [start() for _ in range(actors)]
        ready = ray.get([h.ready.remote() for h in handles], timeout=120)
        seen = [r for r, _ in ray.get([h.evaluate.remote() for h in handles], timeout=60)]
        out[label] = {"actors": ready, "results": seen}
        for h in handles:
            ray.kill(h)
print(json.dumps(out))
