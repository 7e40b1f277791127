"""Running views over dataset versions: the augment job (Ray), its CLI and the preview commands."""
