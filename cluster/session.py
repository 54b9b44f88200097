"""Connecting to Ray: an embedded local cluster on 127.0.0.1, or an existing one."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass

from landscape.errors import ClusterError


def _quiet_local_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home


def loopback_only() -> None:
    """Make an embedded single-node Ray bind every server to 127.0.0.1.

    Ray 2.60 replaces `_node_ip_address="127.0.0.1"` by the machine's outward
    address unless it runs in its single-machine mode (the constant behind
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read at call time). Only this process's
    copy is switched, never the environment: a `ray start --address` child
    would refuse to join a cluster with it.
    """
    import ray._private.ray_constants as constants

    constants.ENABLE_RAY_CLUSTER = False


@contextlib.contextmanager
def _keep_sigterm_handler():
    """ray.init installs SIGTERM handlers of its own (sys.exit, and a native one that
    dumps stacks); put the caller's back, so SIGTERM ends a job the way it chose."""
    main = threading.current_thread() is threading.main_thread()
    saved = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and saved is not None:
            signal.signal(signal.SIGTERM, saved)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None):
    """Yield a connected Ray; start (and stop) a local one when `address` is None."""
    _quiet_local_env()
    import ray

    if ray.is_initialized():  # tests and notebooks may hold a session already
        with _connection_errors():
            yield ray
        return
    try:
        with _keep_sigterm_handler():
            if address is None:
                loopback_only()
                # Local workers import user factories ('pkg.mod:fn') from the caller's cwd.
                pythonpath = os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH", "")] if p)
                ray.init(
                    address="local",  # always a new instance: None would join the last `ray start` cluster on this machine
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    logging_level=logging.WARNING,
                    runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "RAY_USAGE_STATS_ENABLED": "0"}},
                )
            else:
                if address.rpartition(":")[0] in ("127.0.0.1", "localhost"):
                    loopback_only()  # else Ray rewrites 127.0.0.1 to the outward address and hangs
                ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(f"cannot connect to Ray at {address!r}: {str(e).splitlines()[0]}") from e
    try:
        with _connection_errors():
            yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _connection_errors():
    """Ray's own failures that reach the session (its raylet died, e.g. when a Ray process was killed; a
    lost connection) become one ClusterError line; the result being written records it as failed, and
    the same command resumes. Errors of the user's code are turned into lines before they get here."""
    import ray

    try:
        yield
    except (ray.exceptions.RayError, ConnectionError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise ClusterError(
            f"Ray failed under this run ({type(e).__name__}: {first}); run the same command again to resume"
        ) from None


@dataclass(frozen=True)
class ActorRequest:
    """What each actor asks Ray for, and how many actors."""

    actors: int
    cpus: float
    gpus: float
    # An actor given GPUs checks that PyTorch sees one; False only where a cluster pretends to
    # have GPUs (`ray start --num-gpus N` on a CPU machine, in tests).
    require_cuda: bool = True

    def describe(self) -> str:
        import ray

        have = ray.cluster_resources()
        return (
            f"asked for {self.actors} actor(s) x (CPU {self.cpus:g}, GPU {self.gpus:g}); "
            f"the cluster has CPU {have.get('CPU', 0):g}, GPU {have.get('GPU', 0):g}"
        )


def _largest_node(resource: str) -> float:
    """The most of `resource` any one live node has (an actor cannot span nodes)."""
    import ray

    return max((n["Resources"].get(resource, 0.0) for n in ray.nodes() if n.get("Alive")), default=0.0)


def plan_actors(actors: int | None, gpus_per_actor: float | None, cpus_per_actor: float = 1.0) -> ActorRequest:
    """Defaults: one actor per GPU when the cluster has GPUs, else one CPU actor per CPU.

    Fails at once, in one line, when one actor fits no node, or when the actors
    together ask for more GPUs than the cluster has: Ray would otherwise keep them
    pending (an autoscaling cluster: start its GPU nodes first).
    """
    import ray

    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0.0), have.get("GPU", 0.0)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus >= 1 else 0.0
    if actors is None:
        actors = int(gpus // gpus_per_actor) if gpus_per_actor > 0 else int(cpus // cpus_per_actor)
        actors = max(actors, 1)
    req = ActorRequest(actors, cpus_per_actor, gpus_per_actor)
    fixes = []  # name the setting that does not fit, and what the cluster has
    if cpus_per_actor > cpus:
        fixes.append(f"lower cluster.cpus_per_actor ({cpus_per_actor:g}) to at most the cluster's {cpus:g} CPU(s)")
    if gpus_per_actor > gpus:
        fixes.append(f"lower --gpus-per-actor (or cluster.gpus_per_actor, {gpus_per_actor:g}) to at most the cluster's {gpus:g} GPU(s)")
    if fixes:
        raise ClusterError(f"no actor can be placed: {req.describe()}; {' and '.join(fixes)}, or add nodes")
    for name, each in (("GPU", gpus_per_actor), ("CPU", cpus_per_actor)):
        if each > (most := _largest_node(name)):
            raise ClusterError(
                f"no actor can be placed: each asks for {name} {each:g} and no node has that much "
                f"(the largest has {most:g}); {req.describe()}"
            )
    if gpus_per_actor > 0 and actors * gpus_per_actor > gpus + 1e-9:
        raise ClusterError(
            f"the actors ask for {actors * gpus_per_actor:g} GPUs in all and the cluster has {gpus:g}: "
            f"{req.describe()}; lower --actors or --gpus-per-actor"
        )
    return req
