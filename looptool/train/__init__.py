"""Training: an SFT warm-up and GRPO rounds, both LoRA via PEFT on TRL, merged into full checkpoints."""
