"""What a run reads: its dataset, and the folders a manifest may read files under.

- :mod:`.datasets`: :class:`Case`, :func:`load_cases` (csv / jsonl / inline, bounded, bad rows kept as
  error cases), :func:`split_cases` (seeded, stratified) and :func:`dataset_hash`;
- :mod:`.roots`: :class:`DataRoots`, the check every manifest-named path goes through (dataset files
  and the LLM response cache file).
"""

from .datasets import MAX_CASE_ID_CHARS, MAX_DATASET_BYTES, Case, Splits, dataset_hash, load_cases, split_cases
from .roots import DATA_ROOTS_ENV, NEVER_READ, DataRoots

__all__ = [
    "DATA_ROOTS_ENV",
    "MAX_CASE_ID_CHARS",
    "MAX_DATASET_BYTES",
    "NEVER_READ",
    "Case",
    "DataRoots",
    "Splits",
    "dataset_hash",
    "load_cases",
    "split_cases",
]
