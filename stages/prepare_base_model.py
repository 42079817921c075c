"""DVC stage `prepare_base_model`: the round-0 checkpoint every arm starts from -> models/base."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from looptool.models import TinyLlamaConfig, prepare_base_model
from looptool.params import load_params, section


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="models/base")
    args = parser.parse_args(argv)

    cfg = section(load_params(args.params), "base_model")
    tiny = TinyLlamaConfig(**cfg.get("tiny", {}))
    source = str(cfg.get("source", "embedded"))
    print(f"prepare_base_model: source={source} -> {args.out}", flush=True)
    info = prepare_base_model(source, Path(args.out), chat_template=cfg.get("chat_template", "auto"), tiny=tiny)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
