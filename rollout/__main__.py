"""``python -m rollout`` is the CLI (``serve`` starts its controller process this way)."""

from rollout.cli.main import main

main()
