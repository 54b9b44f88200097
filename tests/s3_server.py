"""moto's S3 server on 127.0.0.1 as a module fixture: `from .s3_server import s3, BUCKET`."""

import logging
import types
import urllib.request

import pytest

BUCKET = "landscape-test"


@pytest.fixture(scope="module")
def s3():
    """moto's S3 on a free port; the AWS settings point at it for this module only."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps S3's state per process, across servers: start every module from an empty S3.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).read()
    env = pytest.MonkeyPatch()
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        env.delenv(k, raising=False)
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.setenv("AWS_ENDPOINT_URL", endpoint)  # botocore reads it; nothing in landscape passes it on
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # cached instances would still talk to an earlier module's server
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(BUCKET)
    yield types.SimpleNamespace(endpoint=endpoint, fs=fs)
    env.undo()
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()
