"""Text views: EDA (`eda`) and back-translation (`backtranslate`, translators in `translate`)."""
