"""Body transforms: which responses are rewritten, and how (filters/pipeline.py).

Importing this package imports none of its modules: settings.py takes SubsFilterRules
from filters.rules without loading the codecs (brotli) and the pipeline.
"""
