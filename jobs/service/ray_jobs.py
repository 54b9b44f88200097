"""A Ray cluster's Jobs API, as the `landscape` job commands use it (jobs/service/remote.py).

The address is the dashboard's HTTP address (http://HEAD:8265), as for `ray job`;
every failure of the API becomes one ClusterError that says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time

from landscape.errors import ClusterError

OUTPUT_KEY = "landscape_output"  # job metadata: the result's path or URL
NAME_KEY = "landscape_name"
SPEC_KEY = "landscape_spec"
KIND_KEY = "landscape_kind"  # scan (default) or curve (training)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def dashboard_url(address: str | None) -> str:
    """The Jobs API URL: --address, else $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS (Ray's order)."""
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if not address:
        raise ClusterError("no Ray cluster given: pass --address http://HEAD:8265 (its dashboard) or set RAY_ADDRESS")
    if address in ("auto", "local"):
        raise ClusterError(f"--address {address!r} names no dashboard; give its HTTP address, e.g. http://HEAD:8265")
    scheme, sep, _ = address.partition("://")
    if sep and scheme.lower() not in ("http", "https", "ray"):  # Ray would look for a Python module named like the scheme
        raise ClusterError(f"--address {address!r}: {scheme}:// is not an address of a Ray dashboard; give its http:// "
                           "(or https://) address, e.g. http://HEAD:8265")
    return address.rstrip("/") if sep else f"http://{address.rstrip('/')}"


@contextlib.contextmanager
def _explicit_address():
    # Ray's client lets RAY_API_SERVER_ADDRESS / RAY_ADDRESS override the address it
    # is given; hide them so that --address means what it says.
    saved = {k: os.environ.pop(k) for k in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS") if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class Jobs:
    """The Jobs API of one cluster; its failures become ClusterErrors that say what to do."""

    def __init__(self, address: str | None):
        self.url = dashboard_url(address)
        for name in ("ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk", "ray._private.runtime_env.packaging"):
            logging.getLogger(name).setLevel(logging.WARNING)  # no "Uploading package ..." INFO lines
        from ray.job_submission import JobSubmissionClient

        with _explicit_address(), self._errors():
            self.client = JobSubmissionClient(self.url)

    @contextlib.contextmanager
    def _errors(self, job_id: str | None = None):
        import aiohttp
        import requests
        from ray.exceptions import AuthenticationError

        try:
            yield
        except AuthenticationError as e:
            if "failed" in first_line(e).lower():  # 403: a token was sent and refused
                raise ClusterError(f"the Ray cluster at {self.url} refused the authentication token; check RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token") from None
            raise ClusterError(
                f"the Ray cluster at {self.url} requires token authentication: set RAY_AUTH_MODE=token and give "
                "the cluster's token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
            ) from None
        except (ConnectionError, requests.exceptions.RequestException, aiohttp.ClientError) as e:
            raise ClusterError(
                f"cannot reach the Ray Jobs API at {self.url} ({first_line(e)}); is the cluster up, and is this its "
                "dashboard address (port 8265 by default, not the GCS port 6379)?"
            ) from None
        except RuntimeError as e:
            if job_id is not None and "404" in first_line(e):
                raise ClusterError(f"no job {job_id!r} on the Ray cluster at {self.url}; `landscape list` shows its scans") from None
            raise ClusterError(f"Ray Jobs API at {self.url}: {first_line(e)}") from None

    def info(self, job_id: str):
        with self._errors(job_id):
            return self.client.get_job_info(job_id)

    def list(self) -> list:
        with self._errors():
            return self.client.list_jobs()

    def logs(self, job_id: str) -> str:
        with self._errors(job_id):
            return self.client.get_job_logs(job_id)

    def stop(self, job_id: str) -> bool:
        with self._errors(job_id):
            return self.client.stop_job(job_id)

    def submit(self, **kwargs) -> str:
        with self._errors():
            try:
                return self.client.submit_job(**kwargs)
            except ValueError as e:  # e.g. the package is over Ray's size limit
                raise ClusterError(f"Ray refused the job: {first_line(e)}") from None

    def tail(self, job_id: str) -> None:
        """Copy the job's log to stdout as it grows, until the job ends."""

        async def copy():
            async for chunk in self.client.tail_job_logs(job_id):
                sys.stdout.write(chunk)
                sys.stdout.flush()

        self.info(job_id)  # an unknown id fails here with a clear message
        with self._errors(job_id):
            try:
                asyncio.run(copy())
            except RuntimeError:
                pass  # the stream closed early; wait_done() polls the state instead

    def wait_done(self, job_id: str, timeout_s: float = 60.0):
        """The job's info once it is in a terminal state (the log stream may end a moment before)."""
        deadline = time.monotonic() + timeout_s
        info = self.info(job_id)
        while state_of(info) not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            info = self.info(job_id)
        return info


def state_of(info) -> str:
    """PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    return getattr(info.status, "value", str(info.status))


def job_output(job_id: str, address: str | None) -> str:
    """The result path or URL that the landscape job `job_id` writes (from its metadata)."""
    jobs = Jobs(address)
    info = jobs.info(job_id)
    url = (info.metadata or {}).get(OUTPUT_KEY)
    if not url:
        raise ClusterError(
            f"job {job_id!r} on {jobs.url} is not a landscape scan (no {OUTPUT_KEY!r} in its metadata); "
            "give the result's path or URL instead"
        )
    return url
