"""Does an install resolve? pip's own resolver on the real index, reading package metadata only.

    python -m looptool.install_check gpu    # pyproject's base + [gpu] under configs/gpu-constraints.txt
    python -m looptool.install_check cpu    # base + [dev] under configs/cpu-constraints.txt

``make gpu-resolve-check`` runs the first. It answers the question ``pip install -e '.[gpu]' -c
configs/gpu-constraints.txt`` would answer on a GPU machine (Linux, this Python), without
installing or downloading any wheel.

Why not a plain ``pip install --dry-run --report``: pip (23.2 in this venv; the change is pip's
PR #13482) downloads each selected wheel in full at the end of a dry run, and the index here serves
no PEP 658 ``.metadata`` files, so pip would download the wheels to read their metadata as well:
several GB for torch, the CUDA libraries and vLLM (whose wheel alone is 336 MB). So pip runs in a
child process with ``--use-feature=fast-deps``, which reads each wheel's METADATA out of the
remote zip with HTTP range requests, and with a few of its internals replaced there: the final
download of the wheels read that way is skipped, and their distributions for ``--report`` come
from the metadata already read. Every byte pip reads from the network is counted (``--no-cache-dir``,
so none comes from a cache), and the run stops once the count passes ``byte_limit``: a wheel that
would be fetched whole after all aborts the check instead of filling the disk. ``--only-binary
:all:`` keeps pip from building source distributions to learn their metadata; the few
dependencies published as sdists only are listed in ``SDIST_ONLY``.

The child ignores this machine's pip configuration (its local wheel directory, extra indexes and
the global torch cap) so it sees what a GPU machine sees: the public index alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PUBLIC_INDEX = "https://pypi.org/simple"
# Dependencies (of dvc, through hydra-core) that publish no wheel; their sdists are small.
SDIST_ONLY = ("antlr4-python3-runtime",)
# Far above what metadata reads cost (107 MB for the GPU set, 92 MB of it index pages, measured),
# far below the wheels themselves (vLLM's alone is 336 MB).
DEFAULT_BYTE_LIMIT = 300_000_000
# Each target: (extras of looptool, constraints file).
TARGETS = {
    "gpu": (("gpu",), "configs/gpu-constraints.txt"),
    "cpu": (("dev",), "configs/cpu-constraints.txt"),
}
# pip settings taken from the environment that would point it elsewhere than the public index.
_PIP_ENV_DROPPED = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX",
                    "PIP_REQUIREMENT", "PIP_TARGET", "PIP_PREFIX", "PIP_USER")


def project_requirements(extras: tuple[str, ...], pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """What ``pip install '.[extras]'`` asks for: the base dependencies plus each extra's."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    missing = [e for e in extras if e not in optional]
    if missing:
        raise ValueError(f"pyproject.toml has no extra {missing}")
    return list(project["dependencies"]) + [r for e in extras for r in optional[e]]


@dataclass
class Resolution:
    ok: bool
    installs: dict[str, str] = field(default_factory=dict)  # normalised name -> version pip chose
    downloaded_bytes: int = 0
    seconds: float = 0.0
    output: str = ""  # pip's stdout and stderr (its conflict explanation when not ok)
    full_downloads: list[str] = field(default_factory=list)  # files pip downloaded whole (should be SDIST_ONLY's)
    largest_reads: list[str] = field(default_factory=list)  # "bytes from file", the biggest network reads

    def summary(self, names: tuple[str, ...] = ("torch", "transformers", "vllm", "trl", "peft", "accelerate",
                                                "tokenizers", "numpy")) -> str:
        head = "resolves" if self.ok else "DOES NOT RESOLVE"
        picked = "  ".join(f"{n}=={self.installs[n]}" for n in names if n in self.installs)
        return (f"{head}: {len(self.installs)} distributions, {self.downloaded_bytes / 1e6:.1f} MB read in "
                f"{self.seconds:.0f} s; downloaded whole: {', '.join(self.full_downloads) or 'nothing'}"
                + (f"\n  {picked}" if picked else "")
                + "".join(f"\n  {line}" for line in self.largest_reads[:4]))


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def child_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PIP_ENV_DROPPED}
    env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf: no local wheels, extra indexes or global constraints
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def resolve(requirements: list[str], constraints: Path | None = None, *, index_url: str = PUBLIC_INDEX,
            byte_limit: int = DEFAULT_BYTE_LIMIT, python: str = sys.executable, timeout_s: float = 1800) -> Resolution:
    """Run pip's resolver on ``requirements`` (under ``constraints``) reading metadata only."""
    with tempfile.TemporaryDirectory(prefix="install-check-") as tmp:
        report = Path(tmp) / "report.json"
        requirements_file = Path(tmp) / "requirements.txt"
        requirements_file.write_text("\n".join(requirements) + "\n")
        # No cache: every byte counted comes from the network, and nothing is left in ~/.cache/pip.
        args = ["install", "--dry-run", "--ignore-installed", "--no-cache-dir", "--use-feature=fast-deps",
                "--only-binary", ":all:",
                *[a for name in SDIST_ONLY for a in ("--no-binary", name)],
                "--index-url", index_url, "--report", str(report), "-r", str(requirements_file)]
        if constraints is not None:
            args += ["-c", str(constraints)]
        command = [python, "-m", "looptool.install_check", "_pip", str(byte_limit), "--", *args]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO_ROOT, env=child_environment(), capture_output=True, text=True,
                              timeout=timeout_s)
        seconds = time.perf_counter() - started
        output = done.stdout + done.stderr
        downloaded, largest = 0, []
        for line in done.stderr.splitlines():
            if line.startswith("install_check: read "):
                downloaded = int(line.split()[2])
            elif line.startswith("install_check: ") and (" bytes from " in line or " of index pages" in line):
                largest.append(line.removeprefix("install_check: ").strip())
        full = [line.split()[1].rsplit("/", 1)[-1] for line in output.splitlines()
                if line.strip().startswith("Downloading ")]
        installs = {}
        if done.returncode == 0 and report.exists():
            for item in json.loads(report.read_text())["install"]:
                installs[_normalise(item["metadata"]["name"])] = item["metadata"]["version"]
        return Resolution(ok=done.returncode == 0, installs=installs, downloaded_bytes=downloaded, seconds=seconds,
                          output=output, full_downloads=full, largest_reads=largest)


def resolve_target(target: str, **kwargs) -> Resolution:
    extras, constraints = TARGETS[target]
    return resolve(project_requirements(extras), REPO_ROOT / constraints, **kwargs)


def _pip_reading_metadata_only(byte_limit: int, pip_args: list[str]) -> int:
    """The child: pip's ``main`` with the final wheel downloads left out and network reads counted."""
    from pip._internal.cli.main import main as pip_main
    from pip._internal.operations import prepare
    from pip._internal.req import req_install
    from pip._internal.utils.direct_url_helpers import direct_url_from_link
    from pip._vendor.requests.adapters import HTTPAdapter
    from pip._vendor.urllib3 import response

    read_bytes = [0]
    by_file: dict[str, int] = {}
    read = response.HTTPResponse.read

    def counted_read(self, *args, **kwargs):
        data = read(self, *args, **kwargs)
        read_bytes[0] += len(data or b"")
        url = getattr(self, "_install_check_url", "?").split("#")[0].rstrip("/")
        by_file[url] = by_file.get(url, 0) + len(data or b"")
        if read_bytes[0] > byte_limit:
            raise SystemExit(f"install_check: more than {byte_limit} bytes read from the network; a wheel is "
                             "being downloaded in full, stopped")
        return data

    build_response = HTTPAdapter.build_response

    def labelled_response(self, req, resp):  # before anything is read from it
        resp._install_check_url = str(req.url)
        return build_response(self, req, resp)

    fetch_metadata = prepare.RequirementPreparer._fetch_metadata_only

    def remembering_fetch(self, req):
        dist = fetch_metadata(self, req)
        if dist is not None:
            req._metadata_only_dist = dist
        return dist

    def no_download(self, partially_downloaded_reqs, parallel_builds=False):
        for req in partially_downloaded_reqs:  # what --report needs, which the download would have set
            req.download_info = direct_url_from_link(req.link, req.source_dir)
            req.needs_more_preparation = False

    get_dist = req_install.InstallRequirement.get_dist

    def metadata_dist(self):
        dist = getattr(self, "_metadata_only_dist", None)
        return dist if dist is not None else get_dist(self)

    response.HTTPResponse.read = counted_read
    HTTPAdapter.build_response = labelled_response
    prepare.RequirementPreparer._fetch_metadata_only = remembering_fetch
    prepare.RequirementPreparer._complete_partial_requirements = no_download
    req_install.InstallRequirement.get_dist = metadata_dist
    try:
        return pip_main(pip_args)
    finally:
        print(f"install_check: read {read_bytes[0]} bytes", file=sys.stderr)
        wheels = sum(size for url, size in by_file.items() if url.endswith(".whl"))
        archives = sum(size for url, size in by_file.items() if url.endswith((".tar.gz", ".zip")))
        print(f"install_check: {read_bytes[0] - wheels - archives} bytes of index pages, {wheels} of wheel "
              f"metadata (range requests), {archives} of source archives", file=sys.stderr)
        for url, size in sorted(by_file.items(), key=lambda item: -item[1])[:8]:
            print(f"install_check: {size:>11} bytes from {url.rsplit('/', 1)[-1] or url}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_pip"]:
        return _pip_reading_metadata_only(int(argv[1]), argv[3:] if argv[2:3] == ["--"] else argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--index-url", default=PUBLIC_INDEX)
    parser.add_argument("--byte-limit", type=int, default=DEFAULT_BYTE_LIMIT)
    parser.add_argument("--json", type=Path, help="also write the resolved versions and costs here")
    args = parser.parse_args(argv)
    result = resolve_target(args.target, index_url=args.index_url, byte_limit=args.byte_limit)
    if not result.ok:
        print(result.output[-6000:])
    print(f"{args.target}: {result.summary()}")
    if args.json:
        args.json.write_text(json.dumps({"ok": result.ok, "installs": result.installs, "seconds": result.seconds,
                                         "downloaded_bytes": result.downloaded_bytes,
                                         "full_downloads": result.full_downloads,
                                         "largest_reads": result.largest_reads}, indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
