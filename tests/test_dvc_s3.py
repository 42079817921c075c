"""A DVC-tracked file round-trips through DVC's S3 remote (dvc-s3) to a server on 127.0.0.1.

Fast (~20 s) and not slow-marked, so `make test` exercises the S3 protocol even where the
end-to-end pipeline test (tests/test_pipeline_e2e.py, the same round trip with a whole pipeline's
outputs) is skipped.
"""

import hashlib
import subprocess

from pipeline import PipelineRepo
from s3_server import s3_bucket, s3_endpoint  # noqa: F401  (pytest fixtures)

COMMIT = ("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm")


def test_dvc_push_and_pull_through_s3(tmp_path, s3_bucket):  # noqa: F811
    repo = PipelineRepo(tmp_path / "repo")
    repo.root.mkdir()
    repo.git("init", "-q")
    repo.dvc("init", "-q")
    payload = b"round 1\n" + bytes(range(256)) * 40
    (repo.root / "data.bin").write_bytes(payload)
    repo.dvc("add", "data.bin")
    s3_bucket.add_remote(repo, "e2e", "looptool/store")
    assert "access_key_id" not in (repo.root / ".dvc" / "config").read_text()  # keys stay out of git
    repo.git("add", ".dvc/config", ".dvc/.gitignore", "data.bin.dvc", ".gitignore")
    repo.git(*COMMIT, "data")

    assert s3_bucket.keys() == []
    repo.dvc("push")
    md5 = hashlib.md5(payload).hexdigest()
    assert s3_bucket.keys("looptool/store/") == [f"looptool/store/files/md5/{md5[:2]}/{md5[2:]}"]
    assert "in sync" in repo.dvc("status", "--cloud").stdout

    clone = PipelineRepo(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", str(repo.root), str(clone.root)], check=True)
    assert not (clone.root / "data.bin").exists()
    s3_bucket.add_credentials(clone, "e2e")  # a fresh clone has the remote, not the keys
    clone.dvc("pull")
    assert (clone.root / "data.bin").read_bytes() == payload
    status = clone.dvc("status")
    assert "up to date" in status.stdout, status.stdout
    assert "in sync" in clone.dvc("status", "--cloud").stdout
