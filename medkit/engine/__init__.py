"""The machinery every training shares: the loop with exact resume, its schedule config,
checkpoints, device and seeds, multi-process setup and run folders."""
