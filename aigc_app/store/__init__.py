"""The results store: eval runs, content-addressed generations and scores in one SQLite file (WAL)."""

from aigc_app.store.errors import RunNotFound, StoreError, StoreSchemaTooNew, StoreUnwritable
from aigc_app.store.schema import SCHEMA_VERSION
from aigc_app.store.store import (
    DEFAULT_STORE,
    MergeSummary,
    ResultsStore,
    RunSummary,
    VariantFigures,
    default_store_path,
    new_run_id,
)

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "MergeSummary",
    "ResultsStore",
    "RunNotFound",
    "RunSummary",
    "StoreError",
    "StoreSchemaTooNew",
    "StoreUnwritable",
    "VariantFigures",
    "default_store_path",
    "new_run_id",
]
