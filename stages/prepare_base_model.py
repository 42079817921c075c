"""DVC stage `prepare_base_model`: the round-0 checkpoint every arm starts from -> models/base."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from looptool.models import BaseModelConfig, prepare_base_model
from looptool.params import load_params, section_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="models/base")
    args = parser.parse_args(argv)

    cfg = section_config(load_params(args.params), "base_model", BaseModelConfig)
    print(f"prepare_base_model: source={cfg.source} -> {args.out}", flush=True)
    info = prepare_base_model(cfg.source, Path(args.out), chat_template=cfg.chat_template, tiny=cfg.tiny,
                              tool_format=cfg.tool_format, template_kwargs=cfg.chat_template_kwargs)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
