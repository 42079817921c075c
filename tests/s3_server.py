"""An S3-compatible server on 127.0.0.1 for tests of DVC's S3 remote (dvc-s3).

moto's ThreadedMotoServer is a real HTTP server (werkzeug) speaking the S3 REST protocol; DVC, run
as a subprocess, reaches it only through the remote's `endpointurl`, exactly as it would reach
MinIO. Nothing in the test process is patched. Import the fixture into a test module:

    from s3_server import s3_bucket  # noqa: F401  (a pytest fixture)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

pytest.importorskip("dvc_s3", reason="dvc-s3 is not installed (the dev extra)")
pytest.importorskip("moto.server", reason="moto[server] is not installed (the dev extra)")

# moto accepts any credentials; these only have to reach botocore, from DVC's config or ours.
ACCESS_KEY_ID = "looptool-test"
SECRET_ACCESS_KEY = "looptool-test-secret"
REGION = "us-east-1"


@dataclass
class S3Bucket:
    """One empty bucket on the test server, and how to point a DVC remote at it."""

    endpoint: str
    name: str

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under `prefix`, as the server lists them."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def add_remote(self, repo, remote: str, path: str, default: bool = True) -> None:
        """`dvc remote add` an s3:// URL in `repo` (a PipelineRepo) with this server as its endpoint.

        The URL and endpoint go into .dvc/config (committed); the credentials into .dvc/config.local
        (git-ignored), as the README tells users to do with real keys.
        """
        repo.dvc("remote", "add", *(["-d"] if default else []), "-f", remote, f"s3://{self.name}/{path}")
        repo.dvc("remote", "modify", remote, "endpointurl", self.endpoint)
        repo.dvc("remote", "modify", remote, "region", REGION)
        self.add_credentials(repo, remote)

    def add_credentials(self, repo, remote: str) -> None:
        """The keys for `remote`, local to `repo` (a fresh clone needs them again)."""
        repo.dvc("remote", "modify", "--local", remote, "access_key_id", ACCESS_KEY_ID)
        repo.dvc("remote", "modify", "--local", remote, "secret_access_key", SECRET_ACCESS_KEY)


@pytest.fixture(scope="session")
def s3_endpoint():
    """http://127.0.0.1:PORT of a moto S3 server running for the whole test session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch, tmp_path_factory) -> S3Bucket:
    """A fresh bucket per test. AWS settings of the machine running the tests are kept out."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path_factory.mktemp("aws") / "empty"  # botocore wants a file here, if empty
    empty.touch()
    for var in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(var, str(empty))
    bucket = S3Bucket(endpoint=s3_endpoint, name=f"looptool-{uuid.uuid4().hex[:12]}")
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket
