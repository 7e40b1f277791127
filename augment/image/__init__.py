"""Image views: multi-crop (DeCLIP appendix B, SwAV-style local crops) and AutoAugment (FILIP §3.2)."""
