"""The Ray ingestion job: URL list -> filtered, de-duplicated WebDataset version (see pipeline.py)."""
