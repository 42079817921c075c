"""Data evolution, one round at a time: probe (GCP), judge (JGLV), expand (EDDE), assemble."""
